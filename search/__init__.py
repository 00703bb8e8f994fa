"""Sparse-update schemes: which layers and channels the device trains.

The format lives beside the model it describes (model_prep/scheme.py); `python -m search.scheme
show` prints one with its memory and compute. The search itself (issue 6) comes next.
search/ may import model_prep/, never the reverse.
"""
