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

"""Command-line entry points; each sets up oslo.service's threading backend."""

# oslo.service picks its backend when first imported, and oslo.messaging
# imports oslo.service: select the threading backend (no eventlet) before
# anything else can import either.
import warnings

# oslo.service still depends on eventlet, and futurist imports it whenever
# it is installed, which prints a deprecation warning on every command.
# logrca runs on the threading backend and never uses eventlet.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

from oslo_service import backend  # noqa: E402

try:
    backend.init_backend(backend.BackendType.THREADING)
except backend.exceptions.BackendAlreadySelected:  # pragma: no cover
    pass
