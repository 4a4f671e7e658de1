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

"""logrca-status: upgrade checks (oslo.upgradecheck)."""

import glob
import importlib.metadata
import os
import sys
import urllib.parse

from oslo_config import cfg
from oslo_log import log
from oslo_upgradecheck import common_checks
from oslo_upgradecheck import upgradecheck
from sqlalchemy.engine import url as sa_url
from stevedore import driver as stevedore_driver

from logrca import conf as logrca_conf
from logrca.detectors import base as detector_base

LOG = log.getLogger(__name__)

PARSERS_NAMESPACE = 'logrca.parsers'
Code = upgradecheck.Code
Result = upgradecheck.Result


def _entry_point_names(namespace):
    """Names registered in an entry point namespace, without importing."""
    return {ep.name for ep in importlib.metadata.entry_points(
        group=namespace)}


def _load_driver_class(namespace, name):
    manager = stevedore_driver.DriverManager(namespace, name,
                                             invoke_on_load=False)
    return manager.driver


class Checks(upgradecheck.UpgradeCommands):
    """The upgrade checks of logrca.

    Run them after installing the new code and before restarting the
    services: ``logrca-status upgrade check``.
    """

    display_title = 'logrca upgrade status check'

    def __init__(self, conf):
        self.conf = conf
        self._upgrade_checks = (
            ('Database schema', Checks._check_database),
            ('Configuration', Checks._check_configuration),
            ('Detector artifacts', Checks._check_artifacts),
            ('Policy file', (common_checks.check_policy_json,
                             {'conf': conf})),
        )

    # oslo.upgradecheck calls each check as func(self): the tuple above
    # holds the plain functions.

    def _check_database(self):
        # Imported here: alembic and the models are only needed by this
        # check, not to print --help.
        from logrca.db import migration
        url = sa_url.make_url(self.conf.database.connection)
        if (url.get_backend_name() == 'sqlite' and url.database
                and url.database != ':memory:'
                and not os.path.exists(url.database)):
            # Do not create an empty SQLite file by looking at it.
            return Result(Code.FAILURE,
                          'The database file %s does not exist: run '
                          '"logrca-manage db sync".' % url.database)
        try:
            current = migration.version(self.conf)
        except Exception as exc:  # any driver error: report, do not crash
            return Result(Code.FAILURE,
                          'Cannot read the database schema version: %s'
                          % exc)
        head = migration.head()
        if current is None:
            return Result(Code.FAILURE,
                          'The database is empty: run "logrca-manage db '
                          'sync".')
        if current != head:
            return Result(Code.FAILURE,
                          'The database is at revision %s but this logrca '
                          'expects %s: run "logrca-manage db sync".'
                          % (current, head))
        return Result(Code.SUCCESS, 'Database at revision %s.' % head)

    def _check_configuration(self):
        conf = self.conf
        failures = []
        warnings = []
        known = _entry_point_names(detector_base.NAMESPACE)
        unknown = [d for d in conf.agent.detectors if d not in known]
        if unknown:
            failures.append(
                '[agent] detectors names unknown drivers %s (known: %s).'
                % (', '.join(unknown), ', '.join(sorted(known))))
        if not conf.agent.detectors:
            warnings.append('[agent] detectors is empty: the agent raises '
                            'no anomalies.')
        parsers = _entry_point_names(PARSERS_NAMESPACE)
        if conf.parsing.driver not in parsers:
            failures.append('[parsing] driver %s is not a known template '
                            'miner (known: %s).'
                            % (conf.parsing.driver,
                               ', '.join(sorted(parsers))))
        if not conf.agent.log_files and not conf.agent.journal_units:
            warnings.append('Neither [agent] log_files nor [agent] '
                            'journal_units is set: the agent follows no '
                            'logs%s.' % (
                                '' if conf.agent.notifications
                                else ' and no notifications'))
        elif conf.agent.log_files:
            matched = [p for p in conf.agent.log_files if glob.glob(p)]
            if not matched and not conf.agent.journal_units:
                warnings.append('No file on this host matches [agent] '
                                'log_files (%s).'
                                % ', '.join(conf.agent.log_files))
        for url in conf.notifications.webhook_urls:
            if urllib.parse.urlsplit(url).scheme.lower() not in (
                    'http', 'https'):
                failures.append('[notifications] webhook_urls holds a URL '
                                'that is not http(s); it is ignored.')
        if failures:
            return Result(Code.FAILURE, ' '.join(failures + warnings))
        if warnings:
            return Result(Code.WARNING, ' '.join(warnings))
        return Result(Code.SUCCESS)

    def _check_artifacts(self):
        conf = self.conf
        known = _entry_point_names(detector_base.NAMESPACE)
        problems = []
        checked = []
        for name in conf.agent.detectors:
            if name not in known:
                continue  # reported by the configuration check
            try:
                cls = _load_driver_class(detector_base.NAMESPACE, name)
            except Exception as exc:  # a broken plugin: report it
                problems.append('driver %s cannot be loaded: %s'
                                % (name, exc))
                continue
            if not getattr(cls, 'trainable', False):
                continue
            # Imported only now: it imports torch (seconds).
            from logrca.detectors import artifact
            path = os.path.join(conf.detectors.model_dir, name)
            try:
                meta = artifact.read_metadata(path)
            except artifact.ArtifactError as exc:
                problems.append('%s; train it with "logrca-manage detector '
                                'train %s"' % (exc, name))
                continue
            version = meta.get('format_version')
            if version != artifact.FORMAT_VERSION:
                problems.append(
                    'artifact %s has format version %r, this logrca reads '
                    '%d: retrain it' % (path, version,
                                        artifact.FORMAT_VERSION))
            elif meta.get('driver') != name:
                problems.append('artifact %s was made by driver %r, not %r'
                                % (path, meta.get('driver'), name))
            elif not os.path.isfile(os.path.join(path, artifact.WEIGHTS)):
                problems.append('artifact %s has no %s'
                                % (path, artifact.WEIGHTS))
            else:
                checked.append(name)
        if problems:
            return Result(Code.FAILURE, '; '.join(problems) + '.')
        if not checked:
            return Result(Code.SUCCESS,
                          'No configured detector needs an artifact.')
        return Result(Code.SUCCESS, 'Artifacts of %s are present and of '
                                    'a compatible format version.'
                      % ', '.join(checked))


def main(argv=None):
    """Run ``logrca-status [--config-file FILE] upgrade check [--json]``."""
    conf = cfg.ConfigOpts()
    logrca_conf.register_opts(conf)
    log.register_options(conf)
    log.set_defaults(default_log_levels=log.get_default_log_levels() + [
        'stevedore=WARN', 'alembic=WARN'])
    argv = sys.argv[1:] if argv is None else argv
    return upgradecheck.main(conf, project='logrca',
                             upgrade_command=Checks(conf), argv=argv)


if __name__ == '__main__':
    sys.exit(main())
