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

"""Sphinx configuration of the logrca documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath('_exts'))

extensions = [
    'openstackdocstheme',
    'oslo_config.sphinxext',
    'oslo_policy.sphinxext',
    'cliff.sphinxext',
    'sphinxcontrib.openapi',
    'logrca_manage',
]

# openstackdocstheme
openstackdocs_repo_name = 'openstack/logrca'
openstackdocs_use_storyboard = False
openstackdocs_auto_name = False
openstackdocs_pdf_link = False

project = 'logrca'
copyright = '2026, logrca developers'
master_doc = 'index'
exclude_patterns = ['_build']
pygments_style = 'native'
html_theme = 'openstackdocs'
html_static_path = []

# cliff: the openstackclient commands of the plugin
autoprogram_cliff_application = 'openstack'
