"""The generative backend: keyframe-conditioned video diffusion (Wan2.1 VACE through diffusers'
``WanVACEPipeline``), shared by inbetweening and looping.

``pipeline`` finds and loads the model (a local folder, the Local Weights folder or the Hub cache)
with the memory settings of the device; ``video`` makes the frames of a video through keys at
given positions, window by window; ``matte`` keeps the alpha of RGBA keys.
"""
