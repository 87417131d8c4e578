"""Layer 6, serving: trained models on raw text.

`model_directory` (the on-disk format of a trained classifier), `export` (a SavedModel
that takes raw strings and loads without `weibo_lstm`), `predictor.Predictor`
(length-bucketed batch prediction from either), `numpy_predictor.NumpyPredictor` (the
same probabilities without TensorFlow), `engines` (which of the two runs a model) and
`answers` (blank texts unlabelled, top-k labels).
"""
