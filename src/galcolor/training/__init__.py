"""Learning a model from colour images: folders and HDF5 files held in memory (data, hdf5, split),
public data sets (download), instrument imitation (augment), losses, the trainer and its run folder,
torchrun set-up (distributed, sharding), and fitting a trained model's caution (calibrate) and error head (error_fit).

A new survey's data loader goes here. May import: evaluation, inference, models, color, io, errors, version.
"""
