"""End-to-end tests: the app served in this process, driven by a headless Chromium."""
