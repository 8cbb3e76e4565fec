// A YAML document as plain data, with every node's position, built from
// yaml-cpp's parser events (not YAML::Load), so that the readers of policy
// and .condarc files get positions for every value, refuse anchors and
// aliases (an alias bomb expands a few bytes into millions of nodes), and are
// bounded in nodes and depth before any value is looked at.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace condaguard::yaml {

struct Entry;  // a map's key and value

struct Node {
    enum class Kind { Null, Scalar, Sequence, Map };
    Kind kind = Kind::Null;
    int line = 0;    // 1-based
    int column = 0;  // 1-based
    std::string scalar;
    bool plain = true;  // a scalar without quotes or tag (so `true` is a bool, "true" a string)
    std::vector<Node> items;                     // Sequence
    std::vector<Entry> entries;  // Map, in file order; keys are distinct scalars

    bool is_scalar() const noexcept { return kind == Kind::Scalar; }
    bool is_map() const noexcept { return kind == Kind::Map; }
    bool is_sequence() const noexcept { return kind == Kind::Sequence; }
};

// (A std::pair<Node, Node> would need Node complete inside Node itself.)
struct Entry {
    Node key;
    Node value;
};

struct Limits {
    std::size_t max_nodes = 20000;
    std::size_t max_depth = 32;
};

// The first fault in the text, at a 1-based position: a syntax error, an
// anchor or alias, a duplicate key, a key that is not a scalar, more than one
// document, or too many nodes or levels.
class Fault : public std::runtime_error {
public:
    Fault(int line, int column, const std::string& what) : std::runtime_error(what), line_(line), column_(column) {}
    int line() const noexcept { return line_; }
    int column() const noexcept { return column_; }

private:
    int line_;
    int column_;
};

// The document in `text`; an empty text (or only comments) is a Null node.
Node parse(std::string_view text, const Limits& limits = {});

// "a string", "a list", "a mapping", "nothing": what a node is, for messages.
std::string_view describe(const Node& n) noexcept;

}  // namespace condaguard::yaml
