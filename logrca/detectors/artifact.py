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

"""Trained detector artifacts: safetensors weights plus JSON metadata."""

import json
import os
import time

from oslo_log import log
from safetensors import torch as st_torch

from logrca.detectors import base

LOG = log.getLogger(__name__)

#: Version of the artifact layout; bump when an old artifact cannot be read.
#: 3: keys are the shapes of messages, no longer the miner's templates.
FORMAT_VERSION = 3

WEIGHTS = 'weights.safetensors'
METADATA = 'metadata.json'


class ArtifactError(base.DetectorError):
    """An artifact is missing, damaged or made for another driver."""


def save(path, driver, tensors, metadata):
    """Write ``tensors`` (name -> torch.Tensor) and ``metadata`` to ``path``.

    The metadata gets the format version, the driver name and the time it
    was written. Files are written beside and renamed, so a reader never
    sees half an artifact.
    """
    os.makedirs(path, exist_ok=True)
    meta = dict(metadata)
    meta['format_version'] = FORMAT_VERSION
    meta['driver'] = driver
    meta.setdefault('created_at', time.time())
    weights = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    wpath = os.path.join(path, WEIGHTS)
    mpath = os.path.join(path, METADATA)
    st_torch.save_file(weights, wpath + '.tmp',
                       metadata={'driver': driver,
                                 'format_version': str(FORMAT_VERSION)})
    with open(mpath + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    os.replace(wpath + '.tmp', wpath)
    os.replace(mpath + '.tmp', mpath)
    LOG.info('Saved %s artifact to %s (%d tensors)', driver, path,
             len(weights))


def read_metadata(path):
    """Read an artifact's metadata without checking it."""
    mpath = os.path.join(path, METADATA)
    try:
        with open(mpath, encoding='utf-8') as f:
            meta = json.load(f)
    except FileNotFoundError as exc:
        raise ArtifactError('no detector artifact at %s (missing %s)'
                            % (path, METADATA)) from exc
    except (OSError, ValueError) as exc:
        raise ArtifactError('cannot read artifact metadata %s: %s'
                            % (mpath, exc)) from exc
    if not isinstance(meta, dict):
        raise ArtifactError('artifact metadata %s is not a JSON object'
                            % mpath)
    return meta


def load(path, driver, device='cpu'):
    """Load and check an artifact; return ``(tensors, metadata)``.

    :raises ArtifactError: when it is missing, damaged, of another format
        version or made by another driver.
    """
    meta = read_metadata(path)
    version = meta.get('format_version')
    if version != FORMAT_VERSION:
        raise ArtifactError(
            'artifact %s has format version %r but this logrca reads '
            'version %d; retrain it with "logrca-manage detector train"'
            % (path, version, FORMAT_VERSION))
    if meta.get('driver') != driver:
        raise ArtifactError(
            'artifact %s was made by driver %r, not %r'
            % (path, meta.get('driver'), driver))
    wpath = os.path.join(path, WEIGHTS)
    try:
        tensors = st_torch.load_file(wpath, device=str(device))
    except FileNotFoundError as exc:
        raise ArtifactError('artifact %s has no %s' % (path, WEIGHTS)) \
            from exc
    except Exception as exc:  # safetensors raises its own error types
        raise ArtifactError('cannot read weights %s: %s'
                            % (wpath, exc)) from exc
    return tensors, meta
