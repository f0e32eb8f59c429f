"""SE-CBIR: saliency-enhanced content-based image retrieval for dermoscopy (training side)."""
