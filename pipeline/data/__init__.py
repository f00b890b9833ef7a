"""Data formats and sources: joint layouts, the array store, readers and writers.

``skeleton`` (joint layouts, by name), ``store`` (SplitStore: one split packed in a few ``.npy``),
``transform`` (the exactly invertible [0, 1] map), ``openpose`` (OpenPose JSON parser and writer),
``corpus_csv`` (PHOENIX corpus files), ``pt_skels`` (Progressive-Transformers ``.skels``), ``trees``
(directories and archives), ``policy`` (the ``data`` params section and its ``on_error`` policy),
``sources`` (the ingest of a whole corpus), ``sequences`` (text/pose pairs and batches for the
sequence models), ``poseio`` (``.pose`` export).
"""
