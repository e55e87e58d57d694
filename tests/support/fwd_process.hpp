// Test helper: vireo-fwd (the build's own, $VIREO_FWD) as a child process,
// its stdout and stderr in one file.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "peer_env.hpp"

namespace vireo::test {

inline const char* fwd_binary() {
    const char* p = std::getenv("VIREO_FWD");
    return p != nullptr ? p : "vireo-fwd";
}

// vireo-fwd as a child process with its output in a file. `prefix` runs
// before it (e.g. {"setpriv", "--reuid=nobody", ...}).
class Fwd {
public:
    explicit Fwd(std::vector<std::string> args, std::vector<std::string> prefix = {})
        : log_(peer_socket("fwd" + std::to_string(seq()++)) + ".log") {
        args.insert(args.begin(), fwd_binary());
        args.insert(args.begin(), prefix.begin(), prefix.end());
        pid_ = ::fork();
        if (pid_ == 0) {
            const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execvp(argv[0], argv.data());
            ::_exit(127);
        }
    }
    ~Fwd() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::unlink(log_.c_str());
    }
    std::string log() const {
        std::ifstream f(log_);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }
    bool wait_for(const std::string& text, int ms = 20000) const {
        for (int i = 0; i < ms / 20; i++) {
            if (log().find(text) != std::string::npos) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }
    // SIGINT (unless already exited) and the exit code; -1 if it had to be killed.
    int finish(bool interrupt = true, int ms = 20000) {
        if (interrupt) ::kill(pid_, SIGINT);
        for (int i = 0; i < ms / 20; i++) {
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return -1;
    }

    pid_t pid() const { return pid_; }

private:
    static int& seq() {
        static int n = 0;
        return n;
    }
    std::string log_;
    pid_t pid_ = -1;
};

inline std::string read_file(const std::string& p) {
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// The first number after "key": in a JSON text (vireo-fwd's summary is flat enough).
// vireo-fwd's --json summary, parsed; a missing or malformed file is an
// empty object, so that each check after it fails naming what it looked for.
inline nlohmann::json read_summary(const std::string& path) {
    std::ifstream f(path);
    nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
    return j.is_discarded() ? nlohmann::json::object() : j;
}

// A number in JSON text (telemetry answers as dpdk-telemetry.py prints them).
inline double json_number(const std::string& j, const std::string& key, size_t from = 0) {
    const size_t k = j.find("\"" + key + "\":", from);
    if (k == std::string::npos) return -1;
    return std::strtod(j.c_str() + k + key.size() + 3, nullptr);
}

}  // namespace vireo::test
