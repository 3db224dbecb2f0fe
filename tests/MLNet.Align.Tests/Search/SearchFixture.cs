using MLNet.Align.Encoders;
using MLNet.Align.Projection;
using SkiaSharp;

namespace MLNet.Align.Tests.Search;

/// <summary>Two real aligned models over the packaged encoders (Procrustes and ASIF, fitted on the 56 fixture pairs),
/// saved as bundles, and a helper that lays the 56 fixture images out as a photo folder tree (one folder per label).</summary>
public sealed class SearchFixture : IDisposable
{
    public SearchFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), $"search-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Root);
        using (var m = AlignedModel.FromLinearMap(ProcrustesMap.Fit(FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled))) Save(m, Model, "procrustes");
        using (var m = AlignedModel.FromAnchors(FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled, topK: 10)) Save(m, OtherModel, "asif");
    }

    private static void Save(AlignedModel m, string dir, string name)
    {
        m.Name = name;
        m.ImageEncoder = FixtureFeatures.ResNet18.Identity;
        m.TextEncoder = FixtureFeatures.MiniLM.Identity;
        m.Save(dir);
    }

    public string Root { get; }
    public string Model => Path.Combine(Root, "procrustes");
    public string OtherModel => Path.Combine(Root, "asif");

    /// <summary>A new folder tree LABEL/NAME.png of the fixture images; returns its root.</summary>
    public string Photos()
    {
        string dir = Path.Combine(Root, $"photos-{Guid.NewGuid():N}"[..20]);
        for (int i = 0; i < FixtureFeatures.ImagePaths.Length; i++)
        {
            string target = Path.Combine(dir, FixtureFeatures.Labels[i], Path.GetFileName(FixtureFeatures.ImagePaths[i]));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(FixtureFeatures.ImagePaths[i], target, overwrite: true);
        }
        return dir;
    }

    public string NewIndexDir() => Path.Combine(Root, $"index-{Guid.NewGuid():N}"[..18]);

    /// <summary>A new real image (a fixture image mirrored, so its bytes and its embedding differ) written to <paramref name="path"/>.</summary>
    public static void WriteMirrored(string source, string path)
    {
        using var src = SKBitmap.Decode(source);
        using var surface = SKSurface.Create(new SKImageInfo(src.Width, src.Height));
        surface.Canvas.Scale(-1, 1, src.Width / 2f, 0);
        surface.Canvas.DrawBitmap(src, 0, 0);
        using var img = surface.Snapshot();
        using var data = img.Encode(SKEncodedImageFormat.Png, 100);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, data.ToArray());
    }

    /// <summary>Exact cosine scores of a query vector against the aligned embeddings of <paramref name="paths"/>, computed
    /// directly with the library (encoder, projector), as the reference the index must reproduce.</summary>
    public static float[] DirectScores(string modelDir, float[] query, IReadOnlyList<string> paths)
    {
        using var model = AlignedModel.Load(modelDir);
        var enc = FixtureFeatures.ResNet18.EncodeBatch(paths);
        var aligned = model.ProjectImages(enc.Pooled);
        return Enumerable.Range(0, paths.Count).Select(i => System.Numerics.Tensors.TensorPrimitives.Dot(query, aligned.Row(i))).ToArray();
    }

    /// <summary>The model's aligned text embedding, computed directly.</summary>
    public static float[] DirectText(string modelDir, string text)
    {
        using var model = AlignedModel.Load(modelDir);
        var enc = FixtureFeatures.MiniLM.EncodeBatch([text]);
        return model.ProjectTexts(enc.Pooled).Row(0).ToArray();
    }

    public void Dispose() { try { Directory.Delete(Root, true); } catch (IOException) { } }
}
