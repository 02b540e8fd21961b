"""Every code of the public contract with its Chinese label, in one document."""
