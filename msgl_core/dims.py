"""Dimension and coordinate names of every labelled array msgl reads or writes, defined once.

The processed dataset (``coarse.nc``, ``fine.nc``) and a run's ``predictions.nc`` share them: daily
``time``; coarse NHM ``segment`` (values ``seg_id_nat``); fine ``reach``; and, on the ``reach``
dimension, ``parent_segment``, the ``seg_id_nat`` of the segment each reach lies on (the crosswalk).
Day-of-year climatologies (:func:`msgl_core.climatology`) have ``dayofyear`` 1–366 on the leap-year
calendar (60 is 29 February, 61 is always 1 March).

Example:
    >>> from msgl_core.dims import REACH, TIME
    >>> (TIME, REACH)
    ('time', 'reach')
"""

TIME = "time"
SEGMENT = "segment"
REACH = "reach"
PARENT_SEGMENT = "parent_segment"
DAY_OF_YEAR = "dayofyear"
