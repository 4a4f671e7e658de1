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

"""Fine-tuning a local language model on (context -> explanation) pairs.

Pairs come from labelled failure runs of TRAINING tests (the failure's
signature -> the known operation and fault location) and from the
troubleshooting docs (a section title -> its text). One pair in
:data:`HELD_EVERY` is held apart; the loss on the held pairs is reported
before and after training (only the answer tokens count in the loss).
"""

import random

from oslo_log import log

from logrca import masking
from logrca.rca import hf
from logrca.rca import kb as kb_mod
from logrca.rca import prompting

LOG = log.getLogger(__name__)

HELD_EVERY = 5
MAX_TOKENS = 384


def failure_pair(signature, module, function, operation):
    """A (prompt, answer) pair for a past failure."""
    prompt = prompting.flat_prompt([
        {'role': 'system', 'content': prompting.SYSTEM},
        {'role': 'user', 'content': '<data>\n%s\n</data>\nExplain the '
                                    'failure.' % masking.mask(signature)}])
    answer = 'The %s failed. Most likely cause: %s%s.' % (
        operation or 'operation', module,
        ' (%s)' % function if function else '')
    return prompt, answer


def doc_pair(entry):
    prompt = prompting.flat_prompt([
        {'role': 'user', 'content': 'What does the operator guide say '
                                    'about: %s?' % entry.title}])
    return prompt, entry.text[:400]


def split_pairs(pairs):
    """(train, held) with every HELD_EVERY-th pair held apart."""
    train = [p for i, p in enumerate(pairs) if i % HELD_EVERY]
    held = [p for i, p in enumerate(pairs) if not i % HELD_EVERY]
    return train, held


def _encode(tokenizer, prompt, answer, seq2seq):
    if seq2seq:
        enc = tokenizer(prompt, truncation=True, max_length=MAX_TOKENS,
                        return_tensors='pt')
        labels = tokenizer(answer, truncation=True, max_length=128,
                           return_tensors='pt')['input_ids']
        return {'input_ids': enc['input_ids'],
                'attention_mask': enc['attention_mask'], 'labels': labels}
    import torch
    p_ids = tokenizer(prompt, add_special_tokens=False)['input_ids']
    a_ids = tokenizer(' ' + answer, add_special_tokens=False)['input_ids']
    eos = tokenizer.eos_token_id
    if eos is not None:
        a_ids = a_ids + [eos]
    a_ids = a_ids[:128]
    p_ids = p_ids[-(MAX_TOKENS - len(a_ids)):]
    ids = torch.tensor([p_ids + a_ids])
    labels = torch.tensor([[-100] * len(p_ids) + a_ids])
    return {'input_ids': ids, 'attention_mask': torch.ones_like(ids),
            'labels': labels}


def mean_loss(model, tokenizer, pairs, seq2seq):
    import torch
    if not pairs:
        return float('nan')
    model.eval()
    total = 0.0
    with torch.inference_mode():
        for prompt, answer in pairs:
            total += float(model(**_encode(tokenizer, prompt, answer,
                                           seq2seq)).loss)
    return total / len(pairs)


def finetune_pairs(model_path, pairs, output, epochs=1, lr=5e-5, seed=0):
    """Fine-tune the model at ``model_path`` on ``pairs``; save it.

    :returns: dict with ``loss_before``, ``loss_after``, ``train_pairs``,
        ``held_pairs``.
    """
    import torch
    torch.manual_seed(seed)
    tokenizer, model, seq2seq = hf.load_model(model_path)
    train, held = split_pairs(list(pairs))
    if not train or not held:
        raise ValueError('too few pairs to fine-tune (%d)' % len(pairs))
    before = mean_loss(model, tokenizer, held, seq2seq)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = random.Random(seed)
    for epoch in range(epochs):
        model.train()
        order = list(train)
        rng.shuffle(order)
        for prompt, answer in order:
            loss = model(**_encode(tokenizer, prompt, answer,
                                   seq2seq)).loss
            loss.backward()
            optimiser.step()
            optimiser.zero_grad()
        LOG.info('Fine-tuning epoch %d done', epoch + 1)
    after = mean_loss(model, tokenizer, held, seq2seq)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return {'loss_before': before, 'loss_after': after,
            'train_pairs': len(train), 'held_pairs': len(held)}


def run(conf, model_path, train_path, output, epochs=1, max_pairs=200,
        lr=5e-5):
    """``logrca-manage rca finetune``: pairs from a training folder."""
    from logrca.evaluation import cache as cache_mod
    from logrca.evaluation import dataset as dataset_mod
    from logrca.evaluation import detection
    from logrca.evaluation import rca as rca_eval
    data = dataset_mod.Dataset(train_path)
    harness = detection.Harness(conf, cache_mod.RecordCache(
        max_line_length=conf.agent.max_line_length), progress=False)
    tests = data.test_keys()
    harness.prepare(data, tests)
    pairs = []
    for entry in rca_eval.failure_entries(harness, data, tests):
        pairs.append(failure_pair(entry.text, entry.module, entry.function,
                                  entry.operation))
    if conf.rca.docs_path:
        docs = kb_mod.doc_entries(conf.rca.docs_path)
        pairs.extend(doc_pair(e) for e in docs[:max_pairs // 4])
    pairs = pairs[:max_pairs]
    return finetune_pairs(model_path, pairs, output, epochs=epochs, lr=lr)
