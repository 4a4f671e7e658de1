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

"""The ``transformers`` RCA driver: a local causal or seq2seq LM by path.

The model is read from ``[rca] model_path`` (a folder written by
``save_pretrained``), never downloaded (``local_files_only``, offline
hub). Small instruction models an operator can drop in: Qwen2.5-0.5B or
1.5B-Instruct, SmolLM2-360M/1.7B-Instruct, Phi-3.5-mini-instruct,
flan-t5-base (seq2seq); or a model fine-tuned with ``logrca-manage rca
finetune``.
"""

import os

from oslo_log import log

from logrca.rca import base
from logrca.rca import prompting

LOG = log.getLogger(__name__)


def load_model(path):
    """(tokenizer, model, is_seq2seq) of a local model folder."""
    if not path or not os.path.isdir(path):
        raise base.RCAError('no local model folder %r ([rca] model_path)'
                            % path)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
    import transformers
    config = transformers.AutoConfig.from_pretrained(
        path, local_files_only=True)
    seq2seq = bool(getattr(config, 'is_encoder_decoder', False))
    cls = (transformers.AutoModelForSeq2SeqLM if seq2seq
           else transformers.AutoModelForCausalLM)
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        path, local_files_only=True)
    model = cls.from_pretrained(path, local_files_only=True)
    model.eval()
    return tokenizer, model, seq2seq


class TransformersDriver(prompting.LanguageModelDriver):
    """Narratives from a local Hugging Face model."""

    name = 'transformers'

    def __init__(self, conf, kb=None, model_path=None):
        super().__init__(conf, kb)
        self.model_path = model_path or conf.rca.model_path
        self.max_new_tokens = conf.rca.max_new_tokens
        self._loaded = None

    def _model(self):
        if self._loaded is None:
            self._loaded = load_model(self.model_path)
        return self._loaded

    def prompt_text(self, messages):
        tokenizer, _model, _s2s = self._model()
        if getattr(tokenizer, 'chat_template', None):
            return tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True)
        return prompting.flat_prompt(messages)

    def generate(self, messages):
        import torch
        tokenizer, model, seq2seq = self._model()
        text = self.prompt_text(messages)
        limit = getattr(model.config, 'n_positions', None) or getattr(
            model.config, 'max_position_embeddings', None) or 2048
        room = max(16, limit - self.max_new_tokens) if not seq2seq else \
            limit
        enc = tokenizer(text, return_tensors='pt', truncation=True,
                        max_length=room)
        # Keep the end of the prompt (the question) when it is cut.
        enc.pop('token_type_ids', None)
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id or 0
        try:
            with torch.inference_mode():
                out = model.generate(
                    **enc, max_new_tokens=min(
                        self.max_new_tokens,
                        max(1, limit - enc['input_ids'].shape[1]))
                    if not seq2seq else self.max_new_tokens,
                    do_sample=False, pad_token_id=pad)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise base.RCAError('generation failed: %s' % exc) from exc
        if not seq2seq:
            out = out[:, enc['input_ids'].shape[1]:]
        return tokenizer.decode(out[0], skip_special_tokens=True)
