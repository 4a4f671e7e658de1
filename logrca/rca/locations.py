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

"""Code locations named by log evidence, normalised to ``pkg/mod.py``."""

import re

# Python packages of the services logrca explains. Frames and loggers of
# other packages (oslo_*, eventlet, the standard library) are context, not
# suspects: faults are looked for in the services' own code first.
PROJECT_PACKAGES = frozenset((
    'nova', 'cinder', 'neutron', 'glance', 'heat', 'keystone', 'placement',
    'os_brick', 'os_vif', 'neutron_lib', 'ironic', 'swift', 'manila'))

# A traceback frame: File ".../site-packages/nova/compute/manager.py",
# line 1852, in _do_build_and_run_instance
_FRAME_RE = re.compile(
    r'File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<func>[\w<>.]+)')
# The location oslo.log appends to DEBUG lines: ``func /path/mod.py:123``
# (``:<*>`` once a template miner masked the line number).
_DEBUG_LOC_RE = re.compile(
    r'(?:^|\s)(?P<func>[\w<>.]+) (?P<path>/\S+\.pyc?):'
    r'(?P<line>\d+|<\*>)\s*$')
# Markers below which a path is relative to the import root.
_ROOTS = ('site-packages/', 'dist-packages/')


def normalise_path(path):
    """``/usr/lib/python2.7/site-packages/nova/x.pyc`` -> ``nova/x.py``.

    Also accepts a module path already normalised (``nova/x.py``) or one
    with a leading slash (``/nova/x.py``, as the fault tables write them).
    Returns None for an empty path.
    """
    if not path:
        return None
    path = path.strip().replace('\\', '/')
    for root in _ROOTS:
        index = path.rfind(root)
        if index >= 0:
            path = path[index + len(root):]
            break
    else:
        parts = [p for p in path.split('/') if p]
        # /opt/stack/nova/nova/compute/manager.py: start at the first
        # project package name.
        for index, part in enumerate(parts):
            if part in PROJECT_PACKAGES and index + 1 < len(parts):
                parts = parts[index:]
                # A checkout folder named like its package (nova/nova/...).
                if len(parts) > 2 and parts[1] == parts[0]:
                    parts = parts[1:]
                break
        path = '/'.join(parts)
    if path.endswith('.pyc') or path.endswith('.pyo'):
        path = path[:-1]
    return path.lstrip('/') or None


def logger_module(logger):
    """``nova.compute.manager`` -> ``nova/compute/manager.py`` (or None)."""
    if not logger or '.' not in logger or ' ' in logger:
        return None
    return logger.replace('.', '/') + '.py'


def package_of(module):
    """The first two parts of a module path: ``nova/compute``."""
    if not module:
        return None
    parts = module.split('/')
    if len(parts) <= 2:
        return parts[0] if len(parts) == 2 else module
    return '/'.join(parts[:2])


def top_package(module):
    """``nova/compute/manager.py`` -> ``nova``."""
    return module.split('/', 1)[0] if module else None


def is_project(module):
    """Whether a module belongs to one of :data:`PROJECT_PACKAGES`."""
    return top_package(module) in PROJECT_PACKAGES


def normalise_function(function):
    """``do_attach_volume+4920;8`` -> ``do_attach_volume``."""
    if not function:
        return None
    return re.split(r'[+;\s]', function.strip(), maxsplit=1)[0] or None


def frames(lines):
    """Traceback frames in ``lines``: list of (module, function, line).

    Frames come in traceback order (outermost first); the deepest frame is
    the last.
    """
    found = []
    for text in lines:
        for match in _FRAME_RE.finditer(text or ''):
            module = normalise_path(match.group('path'))
            if module:
                found.append((module, match.group('func'),
                              int(match.group('line'))))
    return found


def debug_location(location_or_message):
    """(module, function, line) from an oslo.log DEBUG location, or None.

    Accepts the record's ``location`` field (``func /path/mod.py:123``) or
    a whole message or template ending with it (a masked line number
    gives line 0).
    """
    if not location_or_message:
        return None
    match = _DEBUG_LOC_RE.search(location_or_message)
    if not match:
        return None
    module = normalise_path(match.group('path'))
    if not module:
        return None
    line = match.group('line')
    return module, match.group('func'), int(line) if line.isdigit() else 0


def record_locations(record):
    """Every code location a record names, with how it names it.

    :returns: list of ``(module, function_or_None, how)`` where ``how`` is
        ``frame``, ``debug`` or ``logger``; frames deepest last.
    """
    found = []
    for module, func, _line in frames(record.extra or ()):
        found.append((module, func, 'frame'))
    loc = debug_location(record.location) if record.location else None
    if loc is None and record.level == 'DEBUG':
        loc = debug_location(record.message)
    if loc:
        found.append((loc[0], loc[1], 'debug'))
    module = logger_module(record.logger)
    if module:
        found.append((module, None, 'logger'))
    return found


def names_location(text, module, function=None):
    """Whether ``text`` names ``module`` (in any form) or ``function``.

    Used to score evidence: a line names the faulty module when it holds
    the module as a path (``nova/compute/manager.py[c]``) or as a dotted
    logger name (``nova.compute.manager``), or the faulty function as a
    word (``_build_and_run_instance``).
    """
    if not text:
        return False
    if module:
        stem = module[:-3] if module.endswith('.py') else module
        if stem in text or stem.replace('/', '.') in text:
            # ``nova.compute.manager`` must not match
            # ``nova.compute.manager_utils``.
            dotted = stem.replace('/', '.')
            for pattern in (re.escape(stem) + r'\.pyc?\b',
                            re.escape(dotted) + r'(?![\w])'):
                if re.search(pattern, text):
                    return True
    if function and len(function) > 3:
        if re.search(r'(?<![\w])%s(?![\w])' % re.escape(function), text):
            return True
    return False
