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

"""Access to the shared real-log data used by the parsing tests."""

import functools
import os
import pathlib
import tarfile
import unittest

from logrca.tests import services


def shared_data():
    """The shared data folder; skip (or fail under CI) when absent."""
    root = os.environ.get('LOGRCA_SHARED_DATA')
    path = (pathlib.Path(root) if root else
            pathlib.Path(__file__).resolve().parents[4] / '..' / 'shared'
            / 'data')
    if not path.is_dir():
        if services.in_ci():
            raise AssertionError('CI=true and shared data missing at %s'
                                 % path)
        raise unittest.SkipTest('shared data not found at %s' % path)
    return path.resolve()


def loghub_dir(version='loghub-2.0'):
    """The Loghub OpenStack 2k folder of the given label version."""
    return shared_data() / 'loghub-openstack-2k' / version


@functools.lru_cache(maxsize=8)
def archive_member(archive, member):
    """The bytes of one member of a fault-injection archive (streamed)."""
    path = (shared_data() / 'dessertlab-openstack-fault-injection' / 'logs'
            / archive)
    with tarfile.open(path, 'r|xz') as tar:
        for info in tar:
            if info.name == member:
                return tar.extractfile(info).read()
    raise AssertionError('%s not in %s' % (member, archive))
