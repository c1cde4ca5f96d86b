"""Frame in-betweening with our own implementation of the RIFE IFNet networks.

``Interpolator`` wraps a published checkpoint (see ``MODEL_SPECS``) and makes the frame at
any time t between two RGB(A) frames. Its flow and warping live in ``nn.motion``.
"""
from .ifnet import IFNet, IFNetHD
from .models import MODEL_SPECS, Interpolator, ModelSpec, state_dict_from_checkpoint

__all__ = ["IFNet", "IFNetHD", "Interpolator", "MODEL_SPECS", "ModelSpec", "state_dict_from_checkpoint"]
