"""Layer 7, tasks: `sentiment_classifier.SentimentClassifier`, a tokenizer and a backbone
that train, evaluate, predict, save and export together (`from_preset`), and
`pipeline.pipeline`, raw texts to labels with a model loaded once."""
