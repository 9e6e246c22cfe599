//! Tokenisation with Hugging Face's `tokenizers`: from a `tokenizer.json`, or built from a GGUF
//! file's metadata (byte-level BPE, as llama.cpp stores it).

use std::path::Path;

use anyhow::{Context, anyhow};

/// A tokenizer and the special tokens generation needs.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl Tokenizer {
    pub fn from_file(path: &Path) -> anyhow::Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| anyhow!("{}: cannot load tokenizer: {e}", path.display()))?;
        Ok(Tokenizer { inner })
    }

    pub fn from_inner(inner: tokenizers::Tokenizer) -> Tokenizer {
        Tokenizer { inner }
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Ids of `text` as written, special-token text (`<|im_start|>`) included as special tokens,
    /// and nothing added (chat templates add their own BOS).
    pub fn encode(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| anyhow!("cannot tokenize: {e}"))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> anyhow::Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| anyhow!("cannot decode: {e}"))
    }

    /// The id of a token given as text (e.g. `<|im_end|>`).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Save as `tokenizer.json`.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        self.inner
            .save(path, false)
            .map_err(|e| anyhow!("{}: cannot save tokenizer: {e}", path.display()))
            .context("saving tokenizer")
    }
}

/// A byte-level BPE tokenizer (GPT-2 style, as SmolLM2, Llama 3 and Qwen2 use) from a token list
/// indexed by id, its merges, and the ids that are special tokens. `split_digits` puts each digit
/// in its own pre-token first (SmolLM2's setting).
pub fn byte_level_bpe(
    tokens: &[String],
    merges: &[(String, String)],
    special_ids: &[u32],
    split_digits: bool,
) -> anyhow::Result<Tokenizer> {
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::digits::Digits;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::{AddedToken, PreTokenizerWrapper};

    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(id, token)| (token.clone(), id as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges.to_vec())
        .build()
        .map_err(|e| anyhow!("invalid BPE vocabulary: {e}"))?;
    let mut inner = tokenizers::Tokenizer::new(bpe);
    let byte_level = ByteLevel::new(false, true, true);
    let pre: PreTokenizerWrapper = if split_digits {
        Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
    } else {
        byte_level.into()
    };
    inner.with_pre_tokenizer(Some(pre));
    inner.with_decoder(Some(ByteLevel::default()));
    let specials: Vec<AddedToken> = special_ids
        .iter()
        .filter_map(|id| tokens.get(*id as usize))
        .map(|t| AddedToken::from(t.clone(), true))
        .collect();
    inner
        .add_special_tokens(specials)
        .map_err(|e| anyhow!("cannot add special tokens: {e}"))?;
    Ok(Tokenizer { inner })
}

/// The 256 byte-level symbols, in byte order (what byte-level BPE vocabularies start from).
pub fn byte_symbols() -> Vec<String> {
    // GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256 + n.
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut extra = 0;
    (0u32..256)
        .map(|b| {
            if printable.contains(&b) {
                char::from_u32(b).unwrap().to_string()
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap().to_string()
            }
        })
        .collect()
}
