"""mtl-aug: multitask learning from augmented auxiliary data for speech emotion recognition."""

__version__ = "0.1.0"
