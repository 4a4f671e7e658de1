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

"""Sub-commands of logrca-manage, one module per category."""

import importlib

# Category modules; each defines ``add_parsers(subparsers)`` which adds its
# sub-commands and sets ``func`` (called with ``conf`` and the parsed
# ``args``) on each parser. A category is imported only when present, so
# the command keeps working while categories are being added.
CATEGORIES = (
    'logrca.manage.db',
    'logrca.manage.replay',
    'logrca.manage.anomaly',
    'logrca.manage.detector',
    'logrca.manage.evaluate',
    'logrca.manage.kb',
    'logrca.manage.rca',
)


def add_categories(subparsers):
    """Add the sub-commands of every category to ``subparsers``."""
    for name in CATEGORIES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.add_parsers(subparsers)
