// The one place where verdicts become text, JSON and exit codes.
#pragma once

#include <condaguard/trust/verdict.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace condaguard::cli {

// JSON output format version; bump on incompatible changes.
inline constexpr int json_version = 1;

nlohmann::json to_json(const Result& r);

// "ok" when all are VALID, "error" when any is ERROR, else "fail".
std::string status_word(const std::vector<Result>& results);

// 0 when all are VALID, 2 when any is ERROR, else 1. An empty list is 0.
int exit_status(const std::vector<Result>& results);

// PATH  VERDICT  reason, one line per artifact.
void print_text(std::FILE* out, const std::vector<Result>& results);

// {"version": 1, "command": ..., "status": ..., "results": [...]}
void print_json(std::FILE* out, const std::string& command, const std::vector<Result>& results);

void print_json_object(std::FILE* out, nlohmann::json doc);

// Text or JSON on stdout, as --json asks; returns exit_status(results).
int report(const std::string& command, const std::vector<Result>& results, bool json);

}  // namespace condaguard::cli
