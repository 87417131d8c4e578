"""Layer 2, preprocessing: raw text to token ids (`tokenizer.Tokenizer`), in core TF ops
so that an exported model tokenizes inside its own graph."""
