"""Sparse autoencoders on GPT-2: load one in SAELens's folder layout, read which features
fire on each token at its site, splice its reconstruction in, and switch features off or
push them. Qt-free; the Features tab and the `features` command are built on it.

- config.py: cfg.json of either SAELens generation; tensor_file.py: the weights file,
  checked from its header first; sources.py: folders, the hub and the public releases;
  loading.py: load_sae()
- sites.py: TransformerLens hook names -> stages of the registry (one table)
- autoencoder.py: SparseAutoencoder (encode / decode)
- switches.py: FeatureSwitches (ablate / steer) and their edit of the site
- readout.py: read_features() from an activation; features.py: features() from a run
- card.py: a feature's card (logit effect, activations on the prompt)
- corpus.py, scan.py: scan_corpus(), each feature's top windows in a corpus (cached, resumable)
"""

from .autoencoder import SparseAutoencoder
from .card import FeatureCard, feature_card, logit_effect
from .config import ARCHITECTURES, NORMALISATIONS, SAEConfig
from .features import FeatureRun, SpliceLosses, features
from .loading import load_sae
from .readout import DEFAULT_TOP, FeatureReadout, read_features
from .scan import DEFAULT_SCAN_TOP, DEFAULT_WINDOW, ScanResult, scan_corpus
from .sites import HOOK_STAGES, Site, site_of
from .sources import SAE_RELEASES, SAERelease, cached_folder, parse_source
from .switches import FeatureSwitches, site_edits

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_SCAN_TOP",
    "DEFAULT_TOP",
    "DEFAULT_WINDOW",
    "HOOK_STAGES",
    "NORMALISATIONS",
    "SAE_RELEASES",
    "FeatureCard",
    "FeatureReadout",
    "FeatureRun",
    "FeatureSwitches",
    "SAEConfig",
    "SAERelease",
    "ScanResult",
    "Site",
    "SparseAutoencoder",
    "SpliceLosses",
    "cached_folder",
    "feature_card",
    "features",
    "load_sae",
    "logit_effect",
    "parse_source",
    "read_features",
    "scan_corpus",
    "site_edits",
    "site_of",
]
