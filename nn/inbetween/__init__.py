"""Frame in-betweening: the worker task (``task``), Key Motion (``keymotion``), scene-cut detection
(``cuts``) and the command line (``__main__``). The RIFE networks it runs live in ``nn.motion.rife``.
"""
