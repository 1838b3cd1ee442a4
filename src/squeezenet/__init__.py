"""squeezenet: small image CNNs for cars, phones and FPGAs, with every size and accuracy measured."""

__version__ = "0.1.0"
