"""Sparse-update scheme search: which layers and channels the device trains.

Not built yet (issues 4 and 6): today the device trains the classifier, as chosen by
`model_prep.bake --train classifier`. search/ may import model_prep/, never the reverse.
"""
