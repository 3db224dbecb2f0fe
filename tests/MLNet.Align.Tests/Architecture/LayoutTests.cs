using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Architecture;

/// <summary>Checks on the repository's own sources: the library's namespaces depend on each other one way only, the
/// code and docs cite files that exist in the repository, and the package targets name the featurizer version the
/// build restores.</summary>
public class LayoutTests(ITestOutputHelper output)
{
    private static readonly string Root = FindRoot();

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "MLNet.Align.sln"))) return d.FullName;
        throw new InvalidOperationException($"MLNet.Align.sln not found above {AppContext.BaseDirectory}.");
    }

    private static IEnumerable<string> Sources(string dir) => Directory.EnumerateFiles(Path.Combine(Root, dir), "*.cs", SearchOption.AllDirectories)
        .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"));

    /// <summary>Namespace -> namespaces it uses, from the library's sources: a file uses a namespace when it names one of
    /// that namespace's top-level types (comments and string literals removed).</summary>
    internal static Dictionary<string, SortedSet<string>> NamespaceGraph()
    {
        var files = Sources("src/MLNet.Align").Select(f => (Path: f, Code: StripCommentsAndStrings(File.ReadAllText(f)))).ToList();
        var owner = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var fileNamespace = new Dictionary<string, string>();
        foreach (var (path, code) in files)
        {
            var ns = Regex.Match(code, @"^namespace\s+([\w.]+)", RegexOptions.Multiline);
            fileNamespace[path] = ns.Success ? ns.Groups[1].Value : "";
            // Top-level types of file-scoped namespaces start at column 0.
            foreach (Match m in Regex.Matches(code, @"^(?:(?:public|internal|static|sealed|abstract|partial|readonly|file)\s+)*(?:class|record|struct|interface|enum)\s+(\w+)", RegexOptions.Multiline))
            {
                if (!owner.TryGetValue(m.Groups[1].Value, out var set)) owner[m.Groups[1].Value] = set = [];
                set.Add(fileNamespace[path]);
            }
        }
        var graph = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var (path, code) in files)
        {
            string from = fileNamespace[path];
            if (!graph.TryGetValue(from, out var uses)) graph[from] = uses = new SortedSet<string>(StringComparer.Ordinal);
            foreach (Match id in Regex.Matches(code, @"\b[A-Z]\w*\b"))
                if (owner.TryGetValue(id.Value, out var nss) && nss.Count == 1 && nss.First() != from) uses.Add(nss.First());
        }
        return graph;
    }

    private static string StripCommentsAndStrings(string code)
    {
        code = Regex.Replace(code, @"/\*.*?\*/", " ", RegexOptions.Singleline);
        code = Regex.Replace(code, @"//[^\n]*", "");
        return Regex.Replace(code, @"@?\$?""(?:\\.|[^""\\])*""", "\"\"");
    }

    [Fact]
    public void LibraryNamespacesHaveNoCycles()
    {
        var graph = NamespaceGraph();
        foreach (var (ns, uses) in graph.OrderBy(kv => kv.Key)) output.WriteLine($"{ns} -> {string.Join(", ", uses)}");
        Assert.True(graph.Count >= 8, $"expected the library's namespaces, found {graph.Count}");
        var cycles = new List<string>();
        foreach (var a in graph.Keys)
            foreach (var b in graph[a])
                if (Reaches(graph, b, a)) cycles.Add($"{a} -> {b} -> ... -> {a}");
        Assert.True(cycles.Count == 0, "namespace cycles: " + string.Join("; ", cycles));
        // The method's namespaces never reach the ML.NET face or the command line.
        Assert.DoesNotContain(graph.Keys, k => k.StartsWith("MLNet.Align.Cli", StringComparison.Ordinal));
    }

    [Fact]
    public void CycleCheckFindsACycle()
    {
        var g = new Dictionary<string, SortedSet<string>> { ["A"] = ["B"], ["B"] = ["C"], ["C"] = ["A"], ["D"] = ["A"] };
        Assert.True(Reaches(g, "B", "A"));
        Assert.False(Reaches(g, "A", "D"));
    }

    private static bool Reaches(Dictionary<string, SortedSet<string>> g, string from, string to)
    {
        var seen = new HashSet<string>();
        var stack = new Stack<string>([from]);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            if (n == to) return true;
            if (!seen.Add(n) || !g.TryGetValue(n, out var next)) continue;
            foreach (var m in next) stack.Push(m);
        }
        return false;
    }

    [Fact]
    public void CodeAndDocsCiteOnlyFilesInTheRepository()
    {
        var texts = new[] { "src", "tests", "examples", "scripts", "bench", "docs" }
            .SelectMany(d => Directory.EnumerateFiles(Path.Combine(Root, d), "*", SearchOption.AllDirectories))
            .Where(f => !f.Contains("/bin/") && !f.Contains("/obj/") && !f.Contains("/fixtures/") && Path.GetExtension(f) is ".cs" or ".md" or ".py" or ".sh" or ".csproj" or ".targets" or ".props")
            .Append(Path.Combine(Root, "README.md"));
        var problems = new List<string>();
        foreach (var f in texts)
        {
            if (f.EndsWith(Path.Combine("Architecture", "LayoutTests.cs"), StringComparison.Ordinal)) continue;
            var text = File.ReadAllText(f);
            foreach (Match m in Regex.Matches(text, @"\.\./shared|\b(?:PAPER|DATA|TOOLCHAIN|DESIGN|STYLE)\.md\b"))
                problems.Add($"{Path.GetRelativePath(Root, f)}: cites '{m.Value}', which is not in this repository");
            foreach (Match m in Regex.Matches(text, @"\bdocs/([\w.-]+\.(?:md|png))"))
                if (!File.Exists(Path.Combine(Root, "docs", m.Groups[1].Value)))
                    problems.Add($"{Path.GetRelativePath(Root, f)}: cites docs/{m.Groups[1].Value}, which does not exist");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems.Distinct()));
    }

    [Fact]
    public void PackageTargetsNameTheRestoredFeaturizerVersion()
    {
        var props = XDocument.Load(Path.Combine(Root, "Directory.Packages.props"));
        var version = props.Descendants("PackageVersion").Single(e => (string?)e.Attribute("Include") == "Microsoft.ML.DnnImageFeaturizer.ResNet18").Attribute("Version")!.Value;
        var targets = XDocument.Load(Path.Combine(Root, "src/MLNet.Align/build/MLNet.Align.targets"));
        var inTargets = targets.Descendants().Single(e => e.Name.LocalName == "MLNetAlignResNet18PackageVersion").Value;
        Assert.Equal(version, inTargets);
    }
}
