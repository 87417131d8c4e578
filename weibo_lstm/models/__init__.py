"""Layer 4, models: Keras objects from token ids to probabilities, and presets as data.

`backbone.WeiboLSTM` (encoder + head), `layers/` (BatchNorm that is equal on any
number of replicas, masked pooling), `language_model.CharLanguageModel` (pretraining),
`encoder` (the encoder directory format), `ngram_logistic` and `hybrid` (the TF-IDF +
LR wide part and its stacking), `presets` (architectures and budgets per device),
`cudnn` (whether LSTMs and batches qualify for the fused kernel).
"""
