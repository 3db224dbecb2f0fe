using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Architecture;

/// <summary>Checks on the repository's own sources: the projects and the namespaces (the library's, the tool's folders,
/// the demo's, the bench's) depend on each other one way only, the library package holds the method only (no stand-in
/// encoders, no two public types of one name, none named after a BCL type), the code and docs cite files that exist in
/// the repository, and the package targets name the featurizer version the build restores. The graphs are printed
/// (test output) as docs/design.md shows them.</summary>
public class LayoutTests(ITestOutputHelper output)
{
    private static readonly string Root = RepoRoot.Path;

    private static IEnumerable<string> Sources(string dir) => Directory.EnumerateFiles(Path.Combine(Root, dir), "*.cs", SearchOption.AllDirectories)
        .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"));

    /// <summary>The projects whose sources make up the product, bottom first.</summary>
    internal static readonly string[] ProductDirs = ["src/MLNet.Align", "src/MLNet.Align.Search", "src/MLNet.Align.Terminal", "src/MLNet.Align.Demo", "src/MLNet.Align.Cli", "bench/MLNet.Align.Bench"];

    /// <summary>Namespace -> namespaces it uses, from the sources under <paramref name="dirs"/> (default: the library's):
    /// a file uses a namespace when it names one of that namespace's top-level types (comments and string literals
    /// removed; a type name declared in two namespaces, such as each program's <c>Program</c>, counts for neither).</summary>
    internal static Dictionary<string, SortedSet<string>> NamespaceGraph(params string[] dirs)
    {
        if (dirs.Length == 0) dirs = ["src/MLNet.Align"];
        // A file sees the types of its own project and of the projects it references (transitively): a type of the
        // demo named like a word in the library is not a use by the library.
        var projects = ProjectGraph();
        var files = dirs.SelectMany(d => Sources(d).Select(f => (Path: f, Project: System.IO.Path.GetFileName(d), Code: StripCommentsAndStrings(File.ReadAllText(f))))).ToList();
        var owner = new Dictionary<string, HashSet<(string Ns, string Project)>>(StringComparer.Ordinal);
        var fileNamespace = new Dictionary<string, string>();
        foreach (var (path, project, code) in files)
        {
            var ns = Regex.Match(code, @"^namespace\s+([\w.]+)", RegexOptions.Multiline);
            // Top-level statements (a program's Program.cs) count as the project's own node.
            fileNamespace[path] = ns.Success ? ns.Groups[1].Value : $"{project}.Program";
            // Top-level types of file-scoped namespaces start at column 0.
            foreach (Match m in Regex.Matches(code, @"^(?:(?:public|internal|static|sealed|abstract|partial|readonly|file)\s+)*(?:class|record|struct|interface|enum)\s+(\w+)", RegexOptions.Multiline))
            {
                if (!owner.TryGetValue(m.Groups[1].Value, out var set)) owner[m.Groups[1].Value] = set = [];
                set.Add((fileNamespace[path], project));
            }
        }
        var visible = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        HashSet<string> Visible(string project)
        {
            if (visible.TryGetValue(project, out var v)) return v;
            v = [project];
            var stack = new Stack<string>([project]);
            while (stack.Count > 0)
                foreach (var r in projects.GetValueOrDefault(stack.Pop()) ?? [])
                    if (v.Add(r)) stack.Push(r);
            return visible[project] = v;
        }
        var graph = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var (path, project, code) in files)
        {
            string from = fileNamespace[path];
            if (!graph.TryGetValue(from, out var uses)) graph[from] = uses = new SortedSet<string>(StringComparer.Ordinal);
            var sees = Visible(project);
            foreach (Match id in Regex.Matches(code, @"\b[A-Z]\w*\b"))
            {
                if (!owner.TryGetValue(id.Value, out var all)) continue;
                var nss = all.Where(o => sees.Contains(o.Project)).Select(o => o.Ns).Distinct().ToList();
                if (nss.Count == 1 && nss[0] != from) uses.Add(nss[0]);
            }
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

    /// <summary>Project -> projects it references (ProjectReference items of every project in the solution).</summary>
    internal static Dictionary<string, SortedSet<string>> ProjectGraph()
    {
        var graph = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var dir in new[] { "src", "bench", "tests", "examples" })
            foreach (var proj in Directory.EnumerateFiles(Path.Combine(Root, dir), "*.csproj", SearchOption.AllDirectories)
                         .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")))
            {
                var refs = XDocument.Load(proj).Descendants("ProjectReference")
                    .Select(e => Path.GetFileNameWithoutExtension(e.Attribute("Include")!.Value.Replace('\\', '/')));
                graph[Path.GetFileNameWithoutExtension(proj)] = new SortedSet<string>(refs, StringComparer.Ordinal);
            }
        // Directory.Build.targets adds the chart renderer to projects that set IncludeAlignPlotter (a build-order
        // reference only: the renderer runs in its own process).
        return graph;
    }

    private static List<string> Cycles(Dictionary<string, SortedSet<string>> graph)
        => graph.Keys.SelectMany(a => graph[a].Where(b => Reaches(graph, b, a)).Select(b => $"{a} -> {b} -> ... -> {a}")).ToList();

    private void Print(string title, Dictionary<string, SortedSet<string>> graph)
    {
        output.WriteLine(title);
        foreach (var (node, uses) in graph.OrderBy(kv => kv.Key, StringComparer.Ordinal)) output.WriteLine($"  {node} -> {string.Join(", ", uses)}");
    }

    [Fact]
    public void ProjectsDependOneWay()
    {
        var graph = ProjectGraph();
        Print("Projects (-> referenced projects):", graph);
        Assert.True(Cycles(graph).Count == 0, "project cycles: " + string.Join("; ", Cycles(graph)));
        // The library references no project; the console helpers only the library; the demo never the tool or the
        // bench; the tool never the bench; nothing product-side references the tests or examples.
        Assert.Empty(graph["MLNet.Align"]);
        Assert.Equal(["MLNet.Align"], graph["MLNet.Align.Terminal"]);
        // Search is a library on the method library (its own package): nothing of the programs.
        Assert.Equal(["MLNet.Align"], graph["MLNet.Align.Search"]);
        Assert.Equal(["MLNet.Align", "MLNet.Align.Search", "MLNet.Align.Terminal"], graph["MLNet.Align.Demo"]);
        Assert.DoesNotContain("MLNet.Align.Bench", graph["MLNet.Align.Cli"]);
        foreach (var p in new[] { "MLNet.Align", "MLNet.Align.Search", "MLNet.Align.Terminal", "MLNet.Align.Demo", "MLNet.Align.Cli", "MLNet.Align.Bench" })
            Assert.DoesNotContain(graph[p], r => r.Contains("Tests", StringComparison.Ordinal));
    }

    [Fact]
    public void ProductNamespacesHaveNoCycles()
    {
        var graph = NamespaceGraph(ProductDirs);
        Print("Namespaces of the library, the console helpers, the demo, the tool and the bench (-> namespaces used):", graph);
        Assert.True(Cycles(graph).Count == 0, "namespace cycles: " + string.Join("; ", Cycles(graph)));
        static bool Under(string ns, string root) => ns == root || ns.StartsWith(root + ".", StringComparison.Ordinal);
        string[] above = ["MLNet.Align.Search", "MLNet.Align.Terminal", "MLNet.Align.Demo", "MLNet.Align.Cli", "MLNet.Align.Bench"];
        foreach (var (ns, uses) in graph)
        {
            // The library's namespaces (and the ML.NET catalog face) never reach the programs built on it.
            if (!above.Any(a => Under(ns, a)))
                Assert.False(uses.Any(u => above.Any(a => Under(u, a))), $"library namespace {ns} uses {string.Join(", ", uses.Where(u => above.Any(a => Under(u, a))))}");
            // The search library sits on the method library only: no console, demo, tool or bench.
            if (Under(ns, "MLNet.Align.Search")) Assert.DoesNotContain(uses, u => above.Where(a => a != "MLNet.Align.Search").Any(a => Under(u, a)));
            // The demo calls the library and the console helpers, never the tool's commands.
            if (Under(ns, "MLNet.Align.Demo")) Assert.DoesNotContain(uses, u => Under(u, "MLNet.Align.Cli") || Under(u, "MLNet.Align.Bench"));
            // The tool's folders: its root (program, shared option parsing) and Commands never need the bench.
            if (Under(ns, "MLNet.Align.Cli")) Assert.DoesNotContain(uses, u => Under(u, "MLNet.Align.Bench"));
        }
        // The tool's commands reach the demo only through its entry points (DemoRunner, DataPreparer and their
        // options): the demo grants no friend access to the tool, so the compiler keeps its internals out of reach.
        var demoProject = XDocument.Load(Path.Combine(Root, "src/MLNet.Align.Demo/MLNet.Align.Demo.csproj"));
        Assert.DoesNotContain(demoProject.Descendants("InternalsVisibleTo"), e => e.Attribute("Include")!.Value == "mlnet-align");
        var demoUses = Sources("src/MLNet.Align.Cli/Commands").SelectMany(f => Regex.Matches(Regex.Replace(StripCommentsAndStrings(File.ReadAllText(f)), @"^using [\w.]+;", "", RegexOptions.Multiline), @"\b(Demo\w*|DataPrep\w*|SourceSelection)\b").Select(m => m.Value)).Distinct().Order().ToList();
        output.WriteLine("Demo types the tool's commands name: " + string.Join(", ", demoUses));
        Assert.True(demoUses.All(t => t is "DemoRunner" or "DemoOptions" or "DemoCommand" or "DataPreparer" or "DataPreparerOptions" or "DataPreparationResult"
            or "DataPreparationProgress" or "DataPreparationException" or "SourceSelection"), "the tool's commands name demo internals: " + string.Join(", ", demoUses));
    }

    [Fact]
    public void LibraryPackageHoldsTheMethodOnly()
    {
        var exported = typeof(Microsoft.ML.AlignmentCatalog).Assembly.GetExportedTypes();
        var topLevel = exported.Where(t => !t.IsNested).ToList();
        output.WriteLine($"MLNet.Align public types: {exported.Length} ({topLevel.Count} top-level, {exported.Length - topLevel.Count} nested)");
        foreach (var g in topLevel.GroupBy(t => t.Namespace).OrderBy(g => g.Key, StringComparer.Ordinal)) output.WriteLine($"  {g.Key}: {g.Count()}");
        // One public type per name, none named after a type of the base class library.
        var duplicates = topLevel.GroupBy(t => t.Name).Where(g => g.Count() > 1).Select(g => string.Join(" / ", g.Select(t => t.FullName))).ToList();
        Assert.True(duplicates.Count == 0, "public types sharing a name: " + string.Join("; ", duplicates));
        var bcl = new[] { typeof(object), typeof(System.Text.Encoding), typeof(Uri), typeof(System.Collections.Generic.List<>), typeof(System.Linq.Enumerable) }
            .Select(t => t.Assembly).Distinct().SelectMany(a => a.GetExportedTypes()).Where(t => !t.IsNested && t.Namespace is { } n && n.StartsWith("System", StringComparison.Ordinal))
            .Select(t => t.Name.Split('`')[0]).ToHashSet(StringComparer.Ordinal);
        var clashes = topLevel.Where(t => bcl.Contains(t.Name.Split('`')[0])).Select(t => t.FullName).ToList();
        Assert.True(clashes.Count == 0, "public types named after BCL types: " + string.Join(", ", clashes));
        // The generated stand-in encoders are test code.
        Assert.DoesNotContain(typeof(Microsoft.ML.AlignmentCatalog).Assembly.GetTypes(), t => t.Name.Contains("StandIn", StringComparison.Ordinal));
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
