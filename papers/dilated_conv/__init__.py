"""Dilated front end and context module (Yu & Koltun 2016), and canvas segmentation data."""
from papers.dilated_conv.model import (CONTEXT_DILATIONS, FRONT_ENDS, ContextModule, DilatedSegmenter,
                                       FrontEnd, context_receptive_field, front_end_receptive_field,
                                       identity_kernel, receptive_field)
