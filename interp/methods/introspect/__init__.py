"""What a model holds: its filters (``filters``), feature maps and filter responses
(``activations``), what a channel looks for (feature visualisation, ``featvis``; dataset examples,
``examples``; receptive fields, ``receptive``) and two models compared filter by filter (``compare``)."""

from .activations import channel_summary, feature_maps, filter_activations, top_channels
from .examples import LayerExamples, crop, dataset_examples
from .featvis import FeatureVis, FourierImage, Transforms, channel_maxima, feature_visualization
from .filters import conv1_autocorrelation, filters, order_by_norm, per_input_channel, reduce_input_channels, rgb_tiles
from .receptive import ReceptiveField, receptive_field

__all__ = [
    "FeatureVis",
    "FourierImage",
    "LayerExamples",
    "ReceptiveField",
    "Transforms",
    "channel_maxima",
    "channel_summary",
    "conv1_autocorrelation",
    "crop",
    "dataset_examples",
    "feature_maps",
    "feature_visualization",
    "filter_activations",
    "filters",
    "order_by_norm",
    "per_input_channel",
    "receptive_field",
    "reduce_input_channels",
    "rgb_tiles",
    "top_channels",
]
