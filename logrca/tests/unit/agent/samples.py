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

"""Real OpenStack notification samples from the shared data, refs resolved."""

import copy
import json
import pathlib

from logrca.tests.unit.parsing import data as shared


def samples_dir():
    """The shared nova-notification-samples folder (skip when absent)."""
    return shared.shared_data() / 'nova-notification-samples'


def _merge(base, override):
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def resolve_refs(obj, here):
    """Resolve ``{"$ref": FILE, ...}`` like nova's ``json_ref``.

    The referenced file (relative to ``here``) is loaded and resolved, then
    the other keys of the referring dict are merged into it recursively.
    """
    if isinstance(obj, list):
        return [resolve_refs(x, here) for x in obj]
    if not isinstance(obj, dict):
        return obj
    obj = {k: resolve_refs(v, here) for k, v in obj.items()}
    ref = obj.pop('$ref', None)
    if ref is None:
        return obj
    path = (here / ref.split('#')[0]).resolve()
    with open(path, encoding='utf-8') as f:
        base = resolve_refs(json.load(f), path.parent)
    return _merge(base, obj)


def load(path):
    """One sample file as a resolved message dict."""
    path = pathlib.Path(path)
    with open(path, encoding='utf-8') as f:
        return resolve_refs(json.load(f), path.parent)


def all_samples():
    """[(relative path, message)] of every JSON notification sample."""
    root = samples_dir()
    out = []
    for path in sorted(root.rglob('*.json')):
        rel = path.relative_to(root)
        if rel.parts[0] == 'common_payloads':
            continue
        out.append((str(rel), load(path)))
    return out


def context_of(message):
    """The request context a listener gets: the ``_context_*`` keys."""
    return {k[len('_context_'):]: v for k, v in message.items()
            if k.startswith('_context_')}
