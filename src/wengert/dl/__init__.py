"""wengert.dl: MATLAB's Deep Learning Toolbox workflow under its MATLAB names.

``dlarray`` with format labels, ``dlfeval``/``dlgradient`` tracing, ``dlnetwork``, the update
functions, ``minibatchqueue`` and ``trainingProgressMonitor``: a thin face over
:mod:`wengert.nn` and the engine (no op is implemented twice).  docs/dl.md maps MATLAB's
name-value options to the keywords used here.
"""
