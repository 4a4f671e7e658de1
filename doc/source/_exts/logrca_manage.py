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

"""Sphinx directive ``logrca-manage-help``: the help of every sub-command.

logrca-manage builds its sub-commands with argparse through oslo.config,
which sphinx-argparse and cliff's directive cannot read; this directive
builds the same parsers (``logrca.manage.add_categories``) and prints each
one's help, so the reference always matches the code.
"""

import argparse

from docutils import nodes
from docutils.parsers.rst import Directive

from logrca import manage


def _walk(parser, path):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, path + [name])


class ManageHelp(Directive):
    """Print ``logrca-manage CATEGORY ACTION --help`` for every action."""

    has_content = False

    def run(self):
        parser = argparse.ArgumentParser(prog='logrca-manage')
        manage.add_categories(parser.add_subparsers(title='categories'))
        result = []
        for path, sub in _walk(parser, []):
            if not path:
                continue
            sub.prog = 'logrca-manage ' + ' '.join(path)
            rubric = nodes.rubric(text='logrca-manage ' + ' '.join(path))
            text = sub.format_help()
            result += [rubric, nodes.literal_block(text, text)]
        return result


def setup(app):
    app.add_directive('logrca-manage-help', ManageHelp)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
