"""The training feature cache: what every training step would otherwise recompute, stored once.

`keys` says which cached entry a manifest row at a resolution needs (and why a stale one is never
read); `shards` writes and reads the safetensors shards and their index; `codec` makes an entry small
(processor pixels as uint8, integers narrowed, both read back exactly); `encoders` loads only the
frozen encoders of a checkpoint; `build` fills the cache from the stage manifests (the
`training_features` asset). The training loop reads it through `kiwi_platform.training.feature_loader`.
"""

from kiwi_platform.features.keys import encoder_hashes, sample_key
from kiwi_platform.features.shards import FeatureCache

__all__ = ["FeatureCache", "encoder_hashes", "sample_key"]
