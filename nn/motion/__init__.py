"""Motion that every feature shares: optical flow between frames (``flow``), backward warping
(``warp``), forward splatting of particles (``splat``) and particle paths through a velocity
field (``particles``). Inbetweening, style propagation and the loop import it from here.
"""
