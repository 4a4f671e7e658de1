# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The optional compiled accelerator of the reader and the shape miner.

``logrca.parsing._speedups`` (``_speedups.c``) is built when logrca is
installed on a machine with a C compiler; it is optional, so an install
without one works and uses the pure-Python code, which stays the
reference: both give the same records, reader counters, templates and
miner state, and the same sessions (the unit tests compare them).
``RecordReader.read()``, ``ShapeParser.add()``,
``logrca.agent.sessions.Sessionizer.add()`` and (for records of known
templates below ERROR) ``logrca.detectors.baseline.BaselineDetector.observe()``
use the compiled code when it is loaded.

Set ``LOGRCA_NO_SPEEDUPS=1`` in the environment to force the pure-Python
code; :func:`use` switches at run time (tests and benchmarks).
"""

import os

ENV = 'LOGRCA_NO_SPEEDUPS'


def _import():
    try:
        from logrca.parsing import _speedups
    except ImportError:
        return None
    return _speedups


def wanted():
    """Whether the environment allows compiled code (``ENV`` unset/0)."""
    return os.environ.get(ENV, '').strip() in ('', '0')


# The compiled module in use, or None.
module = _import() if wanted() else None

# Functions of other packages to call with the module in use (None: the
# pure-Python code) whenever it changes (see register()).
_installers = []


def register(install):
    """Call ``install(module)`` now and whenever :func:`use` switches.

    Every module the accelerator speeds up registers itself when it is
    imported, so that this module imports none of them.
    """
    _installers.append(install)
    install(module)


def register_method(cls, name, setup, factory, namespace):
    """Register an installer of the compiled method ``cls.<name>``.

    With the accelerator, ``module.<setup>(namespace)`` hands it the
    Python names it needs and ``module.<factory>(cls)`` makes the method;
    without it, the pure-Python method (kept here, the reference) is put
    back.
    """
    python = getattr(cls, name)

    def install(accel):
        if accel is None:
            setattr(cls, name, python)
        else:
            getattr(accel, setup)(namespace)
            setattr(cls, name, getattr(accel, factory)(cls))

    register(install)


def implementation():
    """``'c'`` when the compiled accelerator is in use, else ``'python'``."""
    return 'python' if module is None else 'c'


def available():
    """True when the compiled accelerator can be imported."""
    return _import() is not None


def use(enabled):
    """Use the compiled accelerator (if it imports) or the pure Python.

    Applies to readers' ``read()`` calls, miners' ``add()`` calls,
    sessionizers' ``add()`` calls and baseline detectors' ``observe()``
    calls made from now on. Returns
    :func:`implementation`.
    """
    global module
    module = _import() if enabled else None
    for install in _installers:
        install(module)
    return implementation()
