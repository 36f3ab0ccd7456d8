"""Files in and out: decoding images and FITS (decode; linear data to lightness: stretch), finding inputs and naming outputs (paths),
atomic writes (atomic), FITS colour output (fits_output) with the input's own WCS (fits_wcs).

May import: galcolor.errors only. Never sees a tensor: the model never sees a file path, and io never sees a network.
"""
