// .sig parsing, key names and strict base64 (threats A4, A12, A17).
#include <condaguard/sys/fs.hpp>
#include <condaguard/trust/sigfile.hpp>
#include <condaguard/trust/verdict.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

std::string sig_b64(std::size_t n = 256) {
    std::vector<unsigned char> bytes(n, 0xab);
    return base64_encode(bytes);
}

// Expects parse_sig_file to refuse `text` with BAD_SIG_FILE and a message naming the file.
void expect_bad_sig(const std::string& text, const std::string& fragment) {
    try {
        parse_sig_file(text, "pkg.conda.sig");
        FAIL() << "accepted: " << text.substr(0, 80);
    } catch (const VerdictError& e) {
        EXPECT_EQ(e.verdict(), Verdict::BadSigFile);
        EXPECT_NE(std::string(e.what()).find("pkg.conda.sig: "), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(KeyName, AcceptsTheWhitelist) {
    for (const char* ok : {"MyKey", "legacy2048", "a", "_x", "0", "key.v2", "team-key_1", "a.b.c"})
        EXPECT_FALSE(KeyName::problem(ok)) << ok;
    EXPECT_FALSE(KeyName::problem(std::string(64, 'k')));
}

TEST(KeyName, A4_key_name_traversal) {
    EXPECT_TRUE(KeyName::problem("../evil"));
    EXPECT_TRUE(KeyName::problem("a/../b"));
    EXPECT_TRUE(KeyName::problem("/etc/passwd"));
    EXPECT_TRUE(KeyName::problem("..\\evil"));
    EXPECT_TRUE(KeyName::problem("a..b"));
    EXPECT_TRUE(KeyName::problem(".hidden"));
    EXPECT_TRUE(KeyName::problem(".."));
    EXPECT_TRUE(KeyName::problem(""));
    EXPECT_TRUE(KeyName::problem(std::string(65, 'k')));
    EXPECT_TRUE(KeyName::problem("-dash"));
    EXPECT_TRUE(KeyName::problem("sp ace"));
    EXPECT_TRUE(KeyName::problem(std::string_view("nul\0x", 5)));
    EXPECT_THROW(KeyName("../evil"), std::invalid_argument);
}

TEST(SigFile, A4_key_name_traversal_in_sig_file) {
    expect_bad_sig("../../tmp/x " + sig_b64() + "\n", "path separator");
    expect_bad_sig("/abs/key " + sig_b64() + "\n", "path separator");
    expect_bad_sig(".hidden " + sig_b64() + "\n", "starts with a dot");
    expect_bad_sig("a..b " + sig_b64() + "\n", "'..'");
    expect_bad_sig(std::string(65, 'k') + " " + sig_b64() + "\n", "65 characters");
}

TEST(SigFile, ParsesTheOldFormatAndItsVariants) {
    const std::string b64 = sig_b64();
    for (const std::string& text : {"MyKey " + b64 + "\n", "MyKey " + b64 + "\r\n", "MyKey " + b64,
                                    "  MyKey\t" + b64 + "  \n\n"}) {
        SigFile s = parse_sig_file(text, "f.sig");
        EXPECT_EQ(s.key.str(), "MyKey");
        EXPECT_EQ(s.signature, std::vector<unsigned char>(256, 0xab));
    }
    EXPECT_EQ(format_sig_file(KeyName("MyKey"), std::vector<unsigned char>(256, 0xab)), "MyKey " + b64 + "\n");
}

TEST(SigFile, A17_malformed_signature_encoding) {
    expect_bad_sig("", "found 0");
    expect_bad_sig(" \n\r\n", "found 0");
    expect_bad_sig("MyKey\n", "found 1");
    expect_bad_sig("MyKey " + sig_b64() + " extra\n", "found 3");
    std::string b64 = sig_b64();
    std::string star = b64;
    star[100] = '*';
    expect_bad_sig("MyKey " + star, "base64");
    std::string lenient = b64;
    lenient.insert(10, "#");
    expect_bad_sig("MyKey " + lenient, "base64");
    std::string urlsafe = base64_encode(std::vector<unsigned char>(255, 0xfb));
    ASSERT_NE(urlsafe.find('+'), std::string::npos);
    for (auto& c : urlsafe) c = c == '+' ? '-' : c == '/' ? '_' : c;
    expect_bad_sig("MyKey " + urlsafe, "base64");
    std::string unpadded = base64_encode(std::vector<unsigned char>(2, 1));
    ASSERT_EQ(unpadded.back(), '=');
    unpadded.pop_back();
    expect_bad_sig("MyKey " + unpadded, "base64");
}

TEST(SigFile, A12_oversized_sig_file) {
    TempDir t;
    std::string big = "MyKey " + std::string(4096, 'A') + "\n";
    write_file(t / "f.sig", big);
    try {
        read_sig_file(t / "f.sig");
        FAIL();
    } catch (const VerdictError& e) {
        EXPECT_EQ(e.verdict(), Verdict::BadSigFile);
        EXPECT_NE(std::string(e.what()).find((t / "f.sig").string()), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("larger than 4096"), std::string::npos);
    }
    // Exactly at the cap is still read (and judged on its content).
    std::string at_cap = "MyKey " + sig_b64();
    at_cap += std::string(4096 - at_cap.size(), '\n');
    write_file(t / "g.sig", at_cap);
    EXPECT_EQ(read_sig_file(t / "g.sig").key.str(), "MyKey");
}

TEST(SigFile, A2_missing_and_irregular_sig_files) {
    TempDir t;
    try {
        read_sig_file(t / "absent.sig");
        FAIL();
    } catch (const VerdictError& e) {
        EXPECT_EQ(e.verdict(), Verdict::MissingSig);
    }
    stdfs::create_directory(t / "dir.sig");
    try {
        read_sig_file(t / "dir.sig");
        FAIL();
    } catch (const VerdictError& e) {
        EXPECT_EQ(e.verdict(), Verdict::BadSigFile);
        EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
    }
    write_file(t / "real.sig", "MyKey " + sig_b64());
    stdfs::create_symlink(t / "real.sig", t / "link.sig");
    try {
        read_sig_file(t / "link.sig");
        FAIL();
    } catch (const VerdictError& e) {
        EXPECT_EQ(e.verdict(), Verdict::BadSigFile);
        EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos);
    }
}

TEST(Base64, StrictDecoding) {
    EXPECT_EQ(base64_decode_strict("AAAA"), std::vector<unsigned char>(3, 0));
    EXPECT_EQ(base64_decode_strict("AA=="), std::vector<unsigned char>(1, 0));
    EXPECT_EQ(base64_decode_strict("AAA="), std::vector<unsigned char>(2, 0));
    EXPECT_FALSE(base64_decode_strict(""));
    EXPECT_FALSE(base64_decode_strict("AAA"));
    EXPECT_FALSE(base64_decode_strict("AB=="));  // non-zero pad bits
    EXPECT_FALSE(base64_decode_strict("AAB="));
    EXPECT_FALSE(base64_decode_strict("A=AA"));
    EXPECT_FALSE(base64_decode_strict("AA AA"));
    EXPECT_FALSE(base64_decode_strict("A==="));
    for (std::size_t n = 0; n < 70; ++n) {
        std::vector<unsigned char> v(n);
        for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>(i * 37 + 11);
        if (n == 0) continue;
        EXPECT_EQ(base64_decode_strict(base64_encode(v)), v) << n;
    }
}

// A reason is read back through what(), a C string: a NUL from the file must
// not cut it short (found in review: "key name 'demo" and nothing more).
TEST(SigFile, A17_nul_in_key_name_is_shown_not_cutting_the_reason) {
    try {
        parse_sig_file(std::string_view("demo\0x AAAA\n", 12), "n.sig");
        FAIL() << "a NUL in the key name was accepted";
    } catch (const VerdictError& e) {
        EXPECT_EQ(e.verdict(), Verdict::BadSigFile);
        EXPECT_EQ(std::string(e.what()),
                  "n.sig: key name 'demo\\x00x' contains a character outside [A-Za-z0-9._-]");
    }
}

// A14: read_sig_file_at reads `name` in the directory it was given, wherever
// the directory's path leads by now, and never follows a link at `name`.
TEST(SigFile, A14_read_sig_file_at_stays_in_its_directory) {
    TempDir t;
    stdfs::create_directory(t / "d");
    write_file(t / "d" / "f.sig", "Here " + sig_b64());
    const fs::Fd dir = fs::open_dir(t / "d");
    stdfs::rename(t / "d", t / "moved");
    stdfs::create_directory(t / "elsewhere");
    write_file(t / "elsewhere" / "f.sig", "Elsewhere " + sig_b64());
    stdfs::create_directory_symlink(t / "elsewhere", t / "d");
    EXPECT_EQ(read_sig_file(t / "d" / "f.sig").key.str(), "Elsewhere");
    EXPECT_EQ(read_sig_file_at(dir.get(), "f.sig", t / "d" / "f.sig").key.str(), "Here");

    stdfs::create_symlink(t / "elsewhere" / "f.sig", t / "moved" / "link.sig");
    try {
        read_sig_file_at(dir.get(), "link.sig", t / "d" / "link.sig");
        FAIL();
    } catch (const VerdictError& e) {
        EXPECT_EQ(e.verdict(), Verdict::BadSigFile);
        EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
    }
    try {
        read_sig_file_at(dir.get(), "absent.sig", t / "d" / "absent.sig");
        FAIL();
    } catch (const VerdictError& e) {
        EXPECT_EQ(e.verdict(), Verdict::MissingSig);
    }
}
