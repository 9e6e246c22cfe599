//! `emoji.is_emoji(c)` for one character: whether it is, on its own, an emoji of the `emoji`
//! package's data (version 2.15.0, as IFBench pins it).

#[rustfmt::skip]
#[path = "emoji_table.rs"]
mod table;

/// `emoji.is_emoji(c)`.
pub fn is_emoji(c: char) -> bool {
    nltk_text::python::in_ranges(table::SINGLE_EMOJI, c)
}

#[cfg(test)]
mod tests {
    use super::is_emoji;

    #[test]
    fn single_code_point_emoji_only() {
        assert!(is_emoji('😀'));
        assert!(is_emoji('©'));
        assert!(!is_emoji('🇦')); // a regional indicator is an emoji only in a pair
        assert!(!is_emoji('a'));
        assert!(!is_emoji('1'));
        assert!(!is_emoji('\u{fe0f}'));
    }
}
