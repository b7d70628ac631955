"""Trained models shipped with keras_resnet, one folder each (see keras_resnet.pretrained)."""
