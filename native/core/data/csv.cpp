// CSV, streamed line by line into dense rows. Cells may be quoted ("1.5",
// "a ""b"""); a quoted cell cannot span lines.
#include <deque>
#include <new>

#include "reader.h"

namespace gv::data {
namespace {

using detail::at_line;
using detail::show;

struct Cell {
  std::string_view text;  // unquoted view, or into scratch
  size_t column;          // 0-based byte column of the cell's start
};

// Splits a line; false with *badCol and *why set on an unterminated quote.
bool split(std::string_view line, char delim, std::vector<Cell>* cells, std::deque<std::string>* scratch, size_t* badCol,
           const char** why) {
  cells->clear();
  size_t i = 0, scratchUsed = 0;
  for (;;) {
    size_t start = i;
    // Leading spaces before a quote are tolerated.
    size_t j = i;
    while (j < line.size() && line[j] == ' ') ++j;
    if (j < line.size() && line[j] == '"') {
      if (scratch->size() <= scratchUsed) scratch->emplace_back();
      std::string& s = (*scratch)[scratchUsed++];
      s.clear();
      size_t k = j + 1;
      bool closed = false;
      while (k < line.size()) {
        if (line[k] == '"') {
          if (k + 1 < line.size() && line[k + 1] == '"') {
            s.push_back('"');
            k += 2;
            continue;
          }
          closed = true;
          ++k;
          break;
        }
        s.push_back(line[k++]);
      }
      if (!closed) {
        *badCol = j;
        *why = "unterminated quoted cell (a cell cannot span lines)";
        return false;
      }
      while (k < line.size() && line[k] == ' ') ++k;
      if (k < line.size() && line[k] != delim) {
        *badCol = k;
        *why = "unexpected text after a quoted cell";
        return false;
      }
      cells->push_back({std::string_view(s), start});
      i = k;
    } else {
      size_t k = line.find(delim, i);
      if (k == std::string_view::npos) k = line.size();
      std::string_view t = line.substr(i, k - i);
      while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
      while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
      cells->push_back({t, start});
      i = k;
    }
    if (i >= line.size()) return true;
    ++i;  // the delimiter
  }
}

Status load(const std::string& file, const CsvOptions& o, Dataset* out) {
  detail::Source src;
  Status s = src.open(file);
  if (!s.ok()) return s;
  detail::LineReader lines(src);
  Dataset d;
  d.kind = Kind::Dense;
  std::vector<Cell> cells;
  std::deque<std::string> scratch;  // stable addresses: cells view into it
  std::string_view line;
  bool have = false, first = true;
  int64_t label = o.labelIndex;
  size_t columns = 0;
  for (;;) {
    s = lines.next(&line, &have);
    if (!s.ok()) return s;
    if (!have) break;
    const uint64_t ln = lines.line_number();
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank line
    size_t badCol = 0;
    const char* why = nullptr;
    if (!split(line, o.delimiter, &cells, &scratch, &badCol, &why)) return at_line(file, ln, badCol + 1, why);
    if (first) {
      first = false;
      columns = cells.size();
      bool header = o.header == 1 || !o.labelName.empty();
      if (o.header == -1 && !header) {
        float v;
        for (const Cell& c : cells)
          if (!detail::parse_float(c.text, &v, &why)) header = true;
      }
      if (!o.labelName.empty()) {
        if (o.header == 0)
          return Status::Error(Code::Config, "label names a column ('" + o.labelName + "') but header is false", "label");
        label = -1;
        for (size_t c = 0; c < cells.size(); ++c)
          if (cells[c].text == o.labelName) label = static_cast<int64_t>(c);
        if (label < 0) {
          std::string names;
          for (size_t c = 0; c < cells.size() && c < 20; ++c) names += (c ? ", " : "") + show(cells[c].text);
          return at_line(file, ln, 1, "no column named " + show(o.labelName) + " in the header (" + names + ")");
        }
      }
      if (label < 0 || static_cast<uint64_t>(label) >= columns)
        return at_line(file, ln, 1, "label column " + std::to_string(label) + " is beyond the " + std::to_string(columns) + " columns");
      if (columns < 1) return at_line(file, ln, 1, "no columns");
      d.features = columns - 1;
      if (header) continue;
    }
    if (cells.size() != columns) {
      size_t at = cells.size() > columns ? cells[columns].column : line.size();
      return at_line(file, ln, at + 1, "expected " + std::to_string(columns) + " cells (as the first line), got " +
                                            std::to_string(cells.size()));
    }
    for (size_t c = 0; c < cells.size(); ++c) {
      float v;
      if (!detail::parse_float(cells[c].text, &v, &why))
        return at_line(file, ln, cells[c].column + 1, std::string("bad cell ") + show(cells[c].text) + " in column " +
                                                           std::to_string(c) + ": " + why);
      if (static_cast<int64_t>(c) == label) d.labels.push_back(v);
      else d.X.push_back(v);
    }
  }
  if (d.labels.empty()) return at_line(file, lines.line_number() + 1, 1, "no data rows");
  d.rows = d.labels.size();
  detail::finish_labels(&d);
  *out = std::move(d);
  return Status::Ok();
}

}  // namespace

Status load_csv(const std::string& file, const CsvOptions& o, Dataset* out) {
  if (o.header < -1 || o.header > 1)
    return Status::Error(Code::Config, "header must be -1 (auto), 0 or 1, got " + std::to_string(o.header), "header");
  try {
    return load(file, o, out);
  } catch (const std::bad_alloc&) {
    return Status::Error(Code::Internal, file + ": out of memory");
  }
}

}  // namespace gv::data
