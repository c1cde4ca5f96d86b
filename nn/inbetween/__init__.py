"""Frame in-betweening with our own implementation of the RIFE IFNet networks.

``Interpolator`` wraps a published checkpoint (see ``MODEL_SPECS``) and makes the frame at
any time t between two RGB(A) frames; ``warp`` is the flow-based backward warp it uses.
"""
from .ifnet import IFNet, IFNetHD
from .models import MODEL_SPECS, Interpolator, ModelSpec, state_dict_from_checkpoint
from .warp import warp

__all__ = ["IFNet", "IFNetHD", "Interpolator", "MODEL_SPECS", "ModelSpec", "state_dict_from_checkpoint", "warp"]
