#include "yaml_tree.hpp"

#include <condaguard/sys/text.hpp>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <fmt/format.h>

#include <optional>
#include <set>
#include <sstream>

namespace condaguard::yaml {

namespace {

// Builds the tree from the parser's events. Throws Fault at the first thing
// the readers refuse; the parser lets the exception through.
class Builder : public YAML::EventHandler {
public:
    explicit Builder(const Limits& limits) : limits_(limits) {}

    Node take_root() { return std::move(root_); }
    bool has_root() const noexcept { return has_root_; }

    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}

    void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
        no_anchor(mark, anchor);
        add(start(mark, Node::Kind::Null));
    }
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
        fail(mark, "aliases (*name) are not allowed");
    }
    void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  const std::string& value) override {
        no_anchor(mark, anchor);
        Node n = start(mark, Node::Kind::Scalar);
        n.scalar = value;
        n.plain = tag == "?" || tag.empty();
        add(std::move(n));
    }
    void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value) override {
        no_anchor(mark, anchor);
        open(start(mark, Node::Kind::Sequence));
    }
    void OnSequenceEnd() override { close(); }
    void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value) override {
        no_anchor(mark, anchor);
        open(start(mark, Node::Kind::Map));
    }
    void OnMapEnd() override { close(); }
    void OnAnchor(const YAML::Mark& mark, const std::string&) override {
        fail(mark, "anchors (&name) are not allowed");
    }

private:
    // A map under construction remembers the key waiting for its value.
    struct Open {
        Node node;
        std::optional<Node> pending_key;
        std::set<std::string> keys;
    };

    [[noreturn]] static void fail(const YAML::Mark& mark, const std::string& what) {
        throw Fault(mark.line + 1, mark.column + 1, what);
    }
    static void no_anchor(const YAML::Mark& mark, YAML::anchor_t anchor) {
        if (anchor != YAML::NullAnchor) fail(mark, "anchors (&name) are not allowed");
    }

    Node start(const YAML::Mark& mark, Node::Kind kind) {
        if (++nodes_ > limits_.max_nodes) fail(mark, fmt::format("more than {} values", limits_.max_nodes));
        return Node{.kind = kind, .line = mark.line + 1, .column = mark.column + 1};
    }

    void open(Node n) {
        if (stack_.size() >= limits_.max_depth)
            throw Fault(n.line, n.column, fmt::format("nested more than {} levels deep", limits_.max_depth));
        stack_.push_back(Open{.node = std::move(n)});
    }

    void close() {
        Node n = std::move(stack_.back().node);
        stack_.pop_back();
        add(std::move(n));
    }

    void add(Node n) {
        if (stack_.empty()) {
            if (has_root_) throw Fault(n.line, n.column, "more than one YAML document");
            root_ = std::move(n);
            has_root_ = true;
            return;
        }
        Open& top = stack_.back();
        if (top.node.kind == Node::Kind::Sequence) {
            top.node.items.push_back(std::move(n));
            return;
        }
        if (!top.pending_key) {
            if (n.kind != Node::Kind::Scalar)
                throw Fault(n.line, n.column, fmt::format("a key must be a string, not {}", describe(n)));
            if (!top.keys.insert(n.scalar).second)
                throw Fault(n.line, n.column, "duplicate key " + condaguard::quoted(n.scalar));
            top.pending_key = std::move(n);
            return;
        }
        top.node.entries.push_back(Entry{std::move(*top.pending_key), std::move(n)});
        top.pending_key.reset();
    }

    Limits limits_;
    std::size_t nodes_ = 0;
    std::vector<Open> stack_;
    Node root_;
    bool has_root_ = false;
};

}  // namespace

Node parse(std::string_view text, const Limits& limits) {
    std::istringstream in{std::string(text)};
    Builder b(limits);
    try {
        YAML::Parser parser(in);
        while (parser.HandleNextDocument(b)) {
        }
    } catch (const YAML::Exception& e) {
        throw Fault(e.mark.line + 1, e.mark.column + 1, e.msg);
    }
    return b.has_root() ? b.take_root() : Node{.line = 1, .column = 1};
}

std::string_view describe(const Node& n) noexcept {
    switch (n.kind) {
    case Node::Kind::Null: return "nothing";
    case Node::Kind::Scalar: return "a string";
    case Node::Kind::Sequence: return "a list";
    case Node::Kind::Map: return "a mapping";
    }
    return "?";
}

}  // namespace condaguard::yaml
