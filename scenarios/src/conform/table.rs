//! A small CSV reader for the fixture formats: a header, plain comma-separated fields
//! (no quoting), and errors that name the file and line.

use std::fmt;
use std::path::{Path, PathBuf};

/// A malformed input: which file, which line (1-based; the header is line 1), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// The file.
    pub file: PathBuf,
    /// The line, when the problem is on one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for InputError {}

/// A CSV file read into memory, with named columns.
pub struct Table {
    file: PathBuf,
    header: Vec<String>,
    text: String,
}

/// One data row of a table.
pub struct Row<'t> {
    table: &'t Table,
    /// 1-based line number in the file.
    pub line: usize,
    fields: Vec<&'t str>,
}

impl Table {
    /// Reads `path` and its header line.
    pub fn read(path: &Path) -> Result<Table, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| InputError {
            file: path.to_path_buf(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        let header = match text.lines().next() {
            Some(h) if !h.trim().is_empty() => {
                h.trim_end_matches('\r').split(',').map(|c| c.trim().to_string()).collect()
            }
            _ => {
                return Err(InputError {
                    file: path.to_path_buf(),
                    line: Some(1),
                    message: "empty file: a header line is required".into(),
                });
            }
        };
        Ok(Table { file: path.to_path_buf(), header, text })
    }

    /// Whether the header has this column.
    pub fn has(&self, column: &str) -> bool {
        self.header.iter().any(|c| c == column)
    }

    /// The index of a required column.
    pub fn column(&self, name: &str) -> Result<usize, InputError> {
        self.header.iter().position(|c| c == name).ok_or_else(|| {
            self.error(1, format!("missing column `{name}` (header has: {})", self.header.join(",")))
        })
    }

    /// An error at `line` of this file.
    pub fn error(&self, line: usize, message: impl Into<String>) -> InputError {
        InputError { file: self.file.clone(), line: Some(line), message: message.into() }
    }

    /// The data rows (blank lines skipped), each checked to have as many fields as the header.
    pub fn rows(&self) -> impl Iterator<Item = Result<Row<'_>, InputError>> {
        self.text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()).map(move |(i, l)| {
            let line = i + 1;
            let fields: Vec<&str> = l.trim_end_matches('\r').split(',').map(str::trim).collect();
            if fields.len() != self.header.len() {
                return Err(self
                    .error(line, format!("{} fields, the header has {}", fields.len(), self.header.len())));
            }
            Ok(Row { table: self, line, fields })
        })
    }
}

impl<'t> Row<'t> {
    /// The raw text of column `index` (from [`Table::column`]).
    pub fn text(&self, index: usize) -> &'t str {
        self.fields[index]
    }

    /// Parses column `index` with `parse`, naming the column and line on failure.
    pub fn parse<T>(
        &self,
        index: usize,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, InputError> {
        parse(self.fields[index])
            .map_err(|e| self.table.error(self.line, format!("column `{}`: {e}", self.table.header[index])))
    }

    /// An error on this row.
    pub fn error(&self, message: impl Into<String>) -> InputError {
        self.table.error(self.line, message)
    }
}
