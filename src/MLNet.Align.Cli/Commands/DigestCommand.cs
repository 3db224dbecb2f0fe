using System.CommandLine;
using MLNet.Align.Embeddings;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary><c>mlnet-align digest STORE</c>: verifies every shard against the manifest's SHA-256 (exit 1 naming the
/// shards that differ) and prints a layout-independent content digest of an embedding store, to check that a merged
/// store of partitions holds the same rows and embeddings as a one-process store.</summary>
public sealed class DigestCommand : ICliCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var store = new Argument<DirectoryInfo>("store") { Description = "Embedding store folder." };
        var cmd = new Command("digest", "Check an embedding store against its manifest (every shard's SHA-256) and print a layout-independent " +
            "SHA-256 of its rows (index, image, caption, pooled embeddings); exit 1 when the store does not match its manifest.");
        cmd.Arguments.Add(store);
        cmd.SetAction((p, ct) => Task.Run(() => CliErrors.Run(() =>
        {
            var s = EmbeddingStore.Open(p.GetValue(store)!.FullName);
            var problems = s.VerifyAgainstManifest(ct);
            if (problems.Count > 0)
                throw new InvalidDataException($"The embedding store in {s.Directory} does not match its manifest ({problems.Count} of " +
                    $"{s.Shards.Count} shard(s)): {string.Join(" ", problems)} Re-run the embedding into a new folder to rebuild it.");
            Console.WriteLine($"{EmbeddingStoreDigest.Compute(s, ct)}  {s.Directory} ({s.Rows} rows)");
            Console.WriteLine($"manifest: verified ({s.Shards.Count} shard(s) match their SHA-256)");
            return 0;
        })));
        return cmd;
    }
}
